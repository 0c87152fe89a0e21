"""history of every change, and a version on every row

Revision ID: c4c081e32ca6
Revises: 3096c739a27c
Create Date: 2026-11-29 09:36:23.784752

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401  (autogenerate renders AutoString, UTCDateTime)
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "c4c081e32ca6"
down_revision: str | Sequence[str] | None = "3096c739a27c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tablestack_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("row_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tablestack_history")),
    )
    with op.batch_alter_table("tablestack_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tablestack_history_resource_row", ["resource", "row_id", "id"], unique=False
        )

    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("row_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_column("row_version")

    with op.batch_alter_table("tablestack_history", schema=None) as batch_op:
        batch_op.drop_index("ix_tablestack_history_resource_row")

    op.drop_table("tablestack_history")
