"""identity scope: the Canvas an organisation is provisioned into, and the e-mail Canvas reported for an account

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("canvas_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_instance", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_canvas_instance_platform_instance"), ["platform_instance"])
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("canvas_instance_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_organisation_canvas_instance_id_canvas_instance"),
            "canvas_instance",
            ["canvas_instance_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("person_identity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    op.create_index(
        "uq_person_identity_one_sub_per_issuer",
        "person_identity",
        ["person_id", "scope"],
        unique=True,
        sqlite_where=sa.text("kind = 'LTI_SUB'"),
        postgresql_where=sa.text("kind = 'LTI_SUB'"),
    )


def downgrade() -> None:
    op.drop_index("uq_person_identity_one_sub_per_issuer", table_name="person_identity")
    with op.batch_alter_table("person_identity", schema=None) as batch_op:
        batch_op.drop_column("email")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_organisation_canvas_instance_id_canvas_instance"), type_="foreignkey")
        batch_op.drop_column("canvas_instance_id")
    with op.batch_alter_table("canvas_instance", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_canvas_instance_platform_instance"), type_="unique")
        batch_op.drop_column("platform_instance")
