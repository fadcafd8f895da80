"""reminders: preferences, meeting notices and reminders, nudges, seat expiry notices

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminder_preference",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("reminders_on", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_reminder_preference_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_reminder_preference")),
    )
    op.create_table(
        "meeting_notice",
        sa.Column("meeting_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("meeting_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("place", sa.String(length=255), nullable=False),
        sa.Column("video_url", sa.String(length=500), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", name=op.f("pk_meeting_notice")),
    )
    op.create_table(
        "meeting_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meeting.id"], name=op.f("fk_meeting_reminder_meeting_id_meeting"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_meeting_reminder_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_reminder")),
        sa.UniqueConstraint(
            "meeting_id",
            "person_id",
            "starts_at",
            name=op.f("uq_meeting_reminder_meeting_id_person_id_starts_at"),
        ),
    )
    with op.batch_alter_table("meeting_reminder", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_reminder_person_id"), ["person_id"], unique=False)
    op.create_table(
        "nudge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("modules_done", sa.Integer(), nullable=False),
        sa.Column("modules_expected", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["seat_id"], ["seat.id"], name=op.f("fk_nudge_seat_id_seat"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_nudge_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudge")),
    )
    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.create_index("ix_nudge_seat_sent", ["seat_id", "sent_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_nudge_person_id"), ["person_id"], unique=False)
    op.create_table(
        "seat_expiry_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_seat_expiry_notice_person_id_person"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_seat_expiry_notice_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_expiry_notice")),
    )
    with op.batch_alter_table("seat_expiry_notice", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seat_expiry_notice_recipient",
            ["person_id", "organisation_id", "programme_id", "sent_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("seat_expiry_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_expiry_notice_recipient")
    op.drop_table("seat_expiry_notice")
    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nudge_person_id"))
        batch_op.drop_index("ix_nudge_seat_sent")
    op.drop_table("nudge")
    with op.batch_alter_table("meeting_reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_reminder_person_id"))
    op.drop_table("meeting_reminder")
    op.drop_table("meeting_notice")
    op.drop_table("reminder_preference")
