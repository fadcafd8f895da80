"""foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:09:24.576001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "canvas_instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_url", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("auth_provider_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canvas_instance")),
        sa.UniqueConstraint("api_url", name=op.f("uq_canvas_instance_api_url")),
    )
    op.create_table(
        "course_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("platform_instance", sa.String(length=255), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=False),
        sa.Column("canvas_course_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("linked_by_person_sub", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_link")),
        sa.UniqueConstraint(
            "platform_instance", "context_id", name=op.f("uq_course_link_platform_instance_context_id")
        ),
        sa.UniqueConstraint(
            "programme_id", "platform_instance", name=op.f("uq_course_link_programme_id_platform_instance")
        ),
    )
    op.create_table(
        "expiring_value",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_expiring_value")),
    )
    with op.batch_alter_table("expiring_value", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_expiring_value_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "lti_launch",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_launch")),
        sa.UniqueConstraint("nonce", name=op.f("uq_lti_launch_nonce")),
    )
    with op.batch_alter_table("lti_launch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lti_launch_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "lti_registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("auth_login_url", sa.String(length=1024), nullable=False),
        sa.Column("auth_token_url", sa.String(length=1024), nullable=False),
        sa.Column("auth_audience", sa.String(length=1024), nullable=True),
        sa.Column("key_set_url", sa.String(length=1024), nullable=False),
        sa.Column("frame_origins", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_registration")),
        sa.UniqueConstraint("issuer", "client_id", name=op.f("uq_lti_registration_issuer_client_id")),
    )
    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("orgnr", sa.String(length=9), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
        sa.UniqueConstraint("orgnr", name=op.f("uq_organisation_orgnr")),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_email"), ["email"], unique=False)

    op.create_table(
        "tool_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_tool_key_kid")),
    )
    op.create_table(
        "lti_deployment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_deployment_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_deployment")),
        sa.UniqueConstraint(
            "registration_id", "deployment_id", name=op.f("uq_lti_deployment_registration_id_deployment_id")
        ),
    )
    op.create_table(
        "person_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("CANVAS_USER_ID", "LTI_SUB", name="identitykind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_person_identity_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_identity")),
        sa.UniqueConstraint("kind", "scope", "value", name=op.f("uq_person_identity_kind_scope_value")),
    )
    with op.batch_alter_table("person_identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_identity_person_id"), ["person_id"], unique=False)

    op.create_table(
        "programme_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("PARTICIPANT", "MENTOR", "LICENCE_ADMIN", name="programmerolekind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_programme_role_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_programme_role_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_role")),
        sa.UniqueConstraint(
            "person_id",
            "programme_id",
            "organisation_id",
            "role",
            name=op.f("uq_programme_role_person_id_programme_id_organisation_id_role"),
        ),
    )
    with op.batch_alter_table("programme_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_programme_role_person_id"), ["person_id"], unique=False)

    op.create_table(
        "unlicensed_launch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_link_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("canvas_user_id", sa.String(length=64), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("launches", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_link_id"],
            ["course_link.id"],
            name=op.f("fk_unlicensed_launch_course_link_id_course_link"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unlicensed_launch")),
        sa.UniqueConstraint(
            "course_link_id", "issuer", "sub", name=op.f("uq_unlicensed_launch_course_link_id_issuer_sub")
        ),
    )


def downgrade() -> None:

    op.drop_table("unlicensed_launch")
    with op.batch_alter_table("programme_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programme_role_person_id"))

    op.drop_table("programme_role")
    with op.batch_alter_table("person_identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_identity_person_id"))

    op.drop_table("person_identity")
    op.drop_table("lti_deployment")
    op.drop_table("tool_key")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_email"))

    op.drop_table("person")
    op.drop_table("organisation")
    op.drop_table("lti_registration")
    with op.batch_alter_table("lti_launch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_launch_expires_at"))

    op.drop_table("lti_launch")
    with op.batch_alter_table("expiring_value", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expiring_value_expires_at"))

    op.drop_table("expiring_value")
    op.drop_table("course_link")
    op.drop_table("canvas_instance")
