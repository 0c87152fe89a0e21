"""notify the realtime feed of new history entries (PostgreSQL)

Revision ID: ba8092b30b44
Revises: 6c65403792db
Create Date: 2026-11-29 13:05:00

A statement-level trigger on `tablestack_history` sends `NOTIFY tablestack_history` (no
payload) whenever entries are inserted, by whichever writer: the API, the admin, seed loads,
COPY-based fake loads, or SQL typed by hand. Each server process LISTENs on one connection
and, when woken, reads the new entries from the history itself (by id), so the 8 kB payload
limit never applies and a notification lost while it reconnects costs nothing. PostgreSQL
sends notifications at commit and folds identical ones of a transaction into one. SQLite has
no notifications: the feed there is woken by the commits of its own process (and polls).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "ba8092b30b44"
down_revision: str | Sequence[str] | None = "6c65403792db"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION tablestack_history_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tablestack_history', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER tablestack_history_notify
        AFTER INSERT ON tablestack_history
        FOR EACH STATEMENT EXECUTE FUNCTION tablestack_history_notify()
        """
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS tablestack_history_notify ON tablestack_history")
    op.execute("DROP FUNCTION IF EXISTS tablestack_history_notify()")
