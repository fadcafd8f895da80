"""licences: organisation kind and network area, orders, seat pools, seats, audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurspakke.migrations.rebuild import keeping_programme_roles

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORGANISATION_KIND = sa.Enum(
    "KOMMUNE", "BYDEL", "HELSEFORETAK", "OTHER", name="organisationkind", native_enum=False, length=32
)


def upgrade() -> None:
    with keeping_programme_roles(), op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", ORGANISATION_KIND, server_default="OTHER", nullable=False))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_organisation_parent_id_organisation"),
            "organisation",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_organisation_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    op.create_index(op.f("ix_audit_entry_at"), "audit_entry", ["at"], unique=False)
    op.create_index("ix_audit_entry_entity", "audit_entry", ["entity_type", "entity_id"], unique=False)

    op.create_table(
        "licence_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_ore", sa.Integer(), nullable=False),
        sa.Column("vat_rate_percent", sa.Integer(), nullable=False),
        sa.Column("net_ore", sa.Integer(), nullable=False),
        sa.Column("vat_ore", sa.Integer(), nullable=False),
        sa.Column("total_ore", sa.Integer(), nullable=False),
        sa.Column("invoice_reference", sa.String(length=255), nullable=False),
        sa.Column(
            "source",
            sa.Enum("FORM", "MANUAL", "WEBHOOK", name="ordersource", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("contact_name", sa.String(length=255), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("organisation_name", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum("PENDING", "CONFIRMED", "CANCELLED", "CREDITED", name="orderstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("credited_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("quantity >= 1 AND quantity <= 10000", name=op.f("ck_licence_order_quantity_range")),
        sa.CheckConstraint("net_ore + vat_ore = total_ore", name=op.f("ck_licence_order_total_adds_up")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_licence_order_organisation_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_order")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_licence_order_source_external_id")),
    )
    op.create_index(op.f("ix_licence_order_organisation_id"), "licence_order", ["organisation_id"], unique=False)

    op.create_table(
        "seat_pool",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("bought", sa.Integer(), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.CheckConstraint("assigned >= 0 AND assigned <= bought", name=op.f("ck_seat_pool_not_oversold")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_seat_pool_organisation_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_pool")),
        sa.UniqueConstraint("organisation_id", "programme_id", name=op.f("uq_seat_pool_organisation_id_programme_id")),
    )

    op.create_table(
        "seat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("workplace", sa.String(length=255), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_seat_organisation_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_seat_person_id_person"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat")),
    )
    op.create_index(op.f("ix_seat_organisation_id"), "seat", ["organisation_id"], unique=False)
    op.create_index(op.f("ix_seat_person_id"), "seat", ["person_id"], unique=False)
    op.create_index(
        "uq_seat_one_active_per_person",
        "seat",
        ["organisation_id", "programme_id", "person_id"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_seat_one_active_per_person", table_name="seat")
    op.drop_index(op.f("ix_seat_person_id"), table_name="seat")
    op.drop_index(op.f("ix_seat_organisation_id"), table_name="seat")
    op.drop_table("seat")
    op.drop_table("seat_pool")
    op.drop_index(op.f("ix_licence_order_organisation_id"), table_name="licence_order")
    op.drop_table("licence_order")
    op.drop_index("ix_audit_entry_entity", table_name="audit_entry")
    op.drop_index(op.f("ix_audit_entry_at"), table_name="audit_entry")
    op.drop_table("audit_entry")
    with keeping_programme_roles(), op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisation_parent_id"))
        batch_op.drop_constraint(batch_op.f("fk_organisation_parent_id_organisation"), type_="foreignkey")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("kind")
