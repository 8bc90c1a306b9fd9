"""retention: the feeder's ledger pruned by when a file was done

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 20:50:00

- ``fed_files.done_at`` indexed: the keeper's retention loop deletes done ledger rows older
  than ``HYDRA_RETENTION_LEDGER_DAYS`` in small batches, and must find them without reading
  the whole ledger every time.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fed_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fed_files_done_at"), ["done_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fed_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fed_files_done_at"))
