<%!
    from backend.autogenerate import imports_for, qualify_types
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401  (autogenerate renders AutoString, UTCDateTime)
from alembic import op
${imports_for(qualify_types(upgrades + downgrades), imports or "")}
# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${qualify_types(upgrades) if upgrades else "pass"}


def downgrade() -> None:
    ${qualify_types(downgrades) if downgrades else "pass"}
