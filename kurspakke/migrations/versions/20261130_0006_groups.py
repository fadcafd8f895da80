"""mentor groups, group mentors, group members

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mentor_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_mentor_group_organisation_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentor_group")),
        sa.UniqueConstraint(
            "organisation_id",
            "programme_id",
            "name",
            name=op.f("uq_mentor_group_organisation_id_programme_id_name"),
        ),
    )
    op.create_table(
        "group_mentor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["mentor_group.id"], name=op.f("fk_group_mentor_group_id_mentor_group"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_group_mentor_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_mentor")),
        sa.UniqueConstraint("group_id", "person_id", name=op.f("uq_group_mentor_group_id_person_id")),
    )
    with op.batch_alter_table("group_mentor", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_mentor_person_id"), ["person_id"], unique=False)

    op.create_table(
        "group_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["mentor_group.id"], name=op.f("fk_group_member_group_id_mentor_group"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["seat_id"], ["seat.id"], name=op.f("fk_group_member_seat_id_seat"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_member")),
        sa.UniqueConstraint("seat_id", name=op.f("uq_group_member_seat_id")),
    )
    with op.batch_alter_table("group_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_member_group_id"), ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("group_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_member_group_id"))
    op.drop_table("group_member")
    with op.batch_alter_table("group_mentor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_mentor_person_id"))
    op.drop_table("group_mentor")
    op.drop_table("mentor_group")
