"""NAS identifiers unique across the installation: FreeRADIUS knows a request's site only by them

Revision ID: 0005_nas_unique
Revises: 0004_wifi
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_nas_unique"
down_revision: str | None = "0004_wifi"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT identifier FROM site_nas GROUP BY identifier HAVING COUNT(*) > 1 ORDER BY identifier"
            )
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            "These NAS identifiers belong to sites of more than one operator, and one FreeRADIUS cannot "
            f"tell those sites apart: {', '.join(shared)}. Give the access points distinct NAS-Identifier "
            "values, change them in Occupant, then upgrade again."
        )
    with op.batch_alter_table("site_nas", schema=None) as batch_op:
        batch_op.drop_constraint("uq_site_nas_operator_id_identifier", type_="unique")
        batch_op.create_unique_constraint("uq_site_nas_identifier", ["identifier"])


def downgrade() -> None:
    with op.batch_alter_table("site_nas", schema=None) as batch_op:
        batch_op.drop_constraint("uq_site_nas_identifier", type_="unique")
        batch_op.create_unique_constraint("uq_site_nas_operator_id_identifier", ["operator_id", "identifier"])
