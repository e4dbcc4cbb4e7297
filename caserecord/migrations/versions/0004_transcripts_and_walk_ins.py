"""transcript segments, notes and walk-in links

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import caserecord.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transcript_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=40), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("words", sa.Text(), nullable=False),
        sa.Column("created_at", caserecord.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["visit_participants.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id", "speaker", "start_ms", name="uq_segment_visit_speaker_start"),
    )
    with op.batch_alter_table("transcript_segments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcript_segments_visit_id"), ["visit_id"], unique=False)
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("drafter", sa.String(length=80), nullable=False),
        sa.Column("draft", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signed_by", sa.Integer(), nullable=True),
        sa.Column("signed_at", caserecord.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", caserecord.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_comment", sa.String(length=2000), nullable=True),
        sa.Column("audio_deleted_at", caserecord.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("audio_deleted", sa.Text(), nullable=True),
        sa.Column("created_at", caserecord.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", caserecord.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["signed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.ForeignKeyConstraint(["worker_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id"),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notes_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notes_worker_id"), ["worker_id"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("walkin_token", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_users_walkin_token", ["walkin_token"])


def downgrade() -> None:
    op.drop_table("notes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_walkin_token", type_="unique")
        batch_op.drop_column("walkin_token")
    with op.batch_alter_table("transcript_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_segments_visit_id"))
    op.drop_table("transcript_segments")
