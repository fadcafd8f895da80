"""identity scope: the Canvas an organisation is provisioned into, and the e-mail Canvas reported for an account

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurspakke.migrations.rebuild import keeping_programme_roles

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("canvas_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_instance", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_canvas_instance_platform_instance"), ["platform_instance"])
    with keeping_programme_roles(), op.batch_alter_table("organisation", schema=None) as batch_op:
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
        batch_op.create_index(batch_op.f("ix_person_identity_email"), ["email"], unique=False)
    # Data written under the old rules:
    # - every Canvas user id stored so far came from a launch's custom parameter (provisioning did not exist), which
    #   any teacher can set on a link; the new rules treat a stored id as one the tool recorded, so drop them (the
    #   subs recorded beside them still find their people);
    # - a person with two subs of one issuer was claimed by two accounts (the takeover the new rules close); which
    #   one is theirs cannot be told, so neither is kept: their next launches are matched again by the new rules;
    # - e-mails are compared lower-cased from now on.
    op.execute("DELETE FROM person_identity WHERE kind = 'CANVAS_USER_ID'")
    op.execute(
        "DELETE FROM person_identity WHERE kind = 'LTI_SUB' AND EXISTS ("
        " SELECT 1 FROM person_identity AS other WHERE other.kind = 'LTI_SUB'"
        " AND other.person_id = person_identity.person_id AND other.scope = person_identity.scope"
        " AND other.id <> person_identity.id)"
    )
    op.execute("UPDATE person SET email = lower(email) WHERE email <> lower(email)")
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
        batch_op.drop_index(batch_op.f("ix_person_identity_email"))
        batch_op.drop_column("email")
    with keeping_programme_roles(), op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_organisation_canvas_instance_id_canvas_instance"), type_="foreignkey")
        batch_op.drop_column("canvas_instance_id")
    with op.batch_alter_table("canvas_instance", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_canvas_instance_platform_instance"), type_="unique")
        batch_op.drop_column("platform_instance")
