"""certificates, badge keys, AGS endpoints on the course link

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tool_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), server_default="lti", nullable=False))
    with op.batch_alter_table("course_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ags_lineitems_url", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("ags_scopes", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("ags_lineitem_url", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("ags_registration_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_course_link_ags_registration_id_lti_registration"),
            "lti_registration",
            ["ags_registration_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column(
            "role",
            sa.Enum("PARTICIPANT", "MENTOR", name="certificaterole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("organisation_name", sa.String(length=255), nullable=False),
        sa.Column("mentor_names", sa.String(length=500), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("printed", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=255), nullable=False),
        sa.Column("badge_kid", sa.String(length=64), nullable=True),
        sa.Column("badge_jwt", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=500), nullable=False),
        sa.Column("revoked_by", sa.String(length=255), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("ags_posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_certificate_person_id_person"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_certificate_organisation_id_organisation"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"],
            ["certificate.id"],
            name=op.f("fk_certificate_superseded_by_id_certificate"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate")),
        sa.UniqueConstraint("code", name=op.f("uq_certificate_code")),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index(
            "uq_certificate_current",
            ["programme_id", "person_id"],
            unique=True,
            sqlite_where=sa.text("superseded_at IS NULL"),
            postgresql_where=sa.text("superseded_at IS NULL"),
        )
        batch_op.create_index("ix_certificate_organisation", ["organisation_id", "programme_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_badge_kid"), ["badge_kid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_badge_kid"))
        batch_op.drop_index(batch_op.f("ix_certificate_person_id"))
        batch_op.drop_index("ix_certificate_organisation")
        batch_op.drop_index("uq_certificate_current")
    op.drop_table("certificate")
    with op.batch_alter_table("course_link", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_course_link_ags_registration_id_lti_registration"), type_="foreignkey")
        batch_op.drop_column("ags_registration_id")
        batch_op.drop_column("ags_lineitem_url")
        batch_op.drop_column("ags_scopes")
        batch_op.drop_column("ags_lineitems_url")
    with op.batch_alter_table("tool_key", schema=None) as batch_op:
        batch_op.drop_column("purpose")
