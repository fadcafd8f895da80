"""quiz mappings, module completions, progress watermarks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quiz_mapping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_link_id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.String(length=64), nullable=False),
        sa.Column("assignment_id", sa.String(length=64), nullable=False),
        sa.Column("assignment_name", sa.String(length=255), nullable=False),
        sa.Column("points_possible", sa.Float(), nullable=True),
        sa.Column("mapped_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_link_id"],
            ["course_link.id"],
            name=op.f("fk_quiz_mapping_course_link_id_course_link"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_mapping")),
        sa.UniqueConstraint(
            "course_link_id", "assignment_id", name=op.f("uq_quiz_mapping_course_link_id_assignment_id")
        ),
        sa.UniqueConstraint("course_link_id", "module_id", name=op.f("uq_quiz_mapping_course_link_id_module_id")),
    )
    op.create_table(
        "module_completion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("module_id", sa.String(length=64), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("assignment_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_module_completion_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_completion")),
        sa.UniqueConstraint(
            "person_id",
            "programme_id",
            "module_id",
            name=op.f("uq_module_completion_person_id_programme_id_module_id"),
        ),
    )
    with op.batch_alter_table("module_completion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_module_completion_programme_id"), ["programme_id"], unique=False)

    op.create_table(
        "progress_watermark",
        sa.Column("course_link_id", sa.Integer(), nullable=False),
        sa.Column("submitted_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("graded_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_link_id"],
            ["course_link.id"],
            name=op.f("fk_progress_watermark_course_link_id_course_link"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_link_id", name=op.f("pk_progress_watermark")),
    )


def downgrade() -> None:
    op.drop_table("progress_watermark")
    with op.batch_alter_table("module_completion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_module_completion_programme_id"))
    op.drop_table("module_completion")
    op.drop_table("quiz_mapping")
