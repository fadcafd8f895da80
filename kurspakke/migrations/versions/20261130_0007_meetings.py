"""meetings, attendance, the Canvas mirror of mentor groups

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mentor_group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("canvas_group_id", sa.String(length=64), nullable=True))

    op.create_table(
        "canvas_group_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("canvas_instance_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.String(length=64), nullable=False),
        sa.Column("group_category_id", sa.String(length=64), nullable=True),
        sa.Column("locked_by", sa.String(length=128), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["canvas_instance_id"],
            ["canvas_instance.id"],
            name=op.f("fk_canvas_group_set_canvas_instance_id_canvas_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canvas_group_set")),
        sa.UniqueConstraint(
            "canvas_instance_id", "course_id", name=op.f("uq_canvas_group_set_canvas_instance_id_course_id")
        ),
    )
    op.create_table(
        "meeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("place", sa.String(length=255), nullable=False),
        sa.Column("video_url", sa.String(length=500), nullable=False),
        sa.Column("canvas_event_id", sa.String(length=64), nullable=True),
        sa.Column("canvas_context", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["mentor_group.id"], name=op.f("fk_meeting_group_id_mentor_group"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_meeting_organisation_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting")),
        sa.UniqueConstraint("group_id", "session_key", name=op.f("uq_meeting_group_id_session_key")),
    )
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.create_index("ix_meeting_programme_session", ["programme_id", "session_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_meeting_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("makeup", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("led_by_person_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["seat_id"], ["seat.id"], name=op.f("fk_attendance_seat_id_seat"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meeting.id"], name=op.f("fk_attendance_meeting_id_meeting"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["led_by_person_id"],
            ["person.id"],
            name=op.f("fk_attendance_led_by_person_id_person"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance")),
        sa.UniqueConstraint("meeting_id", "seat_id", name=op.f("uq_attendance_meeting_id_seat_id")),
    )
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_seat_session", ["seat_id", "session_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_attendance_programme_id"), ["programme_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_programme_id"))
        batch_op.drop_index("ix_attendance_seat_session")
    op.drop_table("attendance")
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_organisation_id"))
        batch_op.drop_index("ix_meeting_programme_session")
    op.drop_table("meeting")
    op.drop_table("canvas_group_set")
    with op.batch_alter_table("mentor_group", schema=None) as batch_op:
        batch_op.drop_column("canvas_group_id")
