"""note revisions and addenda, risk alerts, the follow-up booking of a note

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import caserecord.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "note_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("sections", sa.String(length=500), nullable=False),
        sa.Column("created_at", caserecord.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["note_id"], ["notes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("note_id", "version", name="uq_note_revision_version"),
    )
    with op.batch_alter_table("note_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_note_revisions_note_id"), ["note_id"], unique=False)
    op.create_table(
        "note_addenda",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", caserecord.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["note_id"], ["notes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("note_addenda", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_note_addenda_note_id"), ["note_id"], unique=False)
    op.create_table(
        "risk_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.Integer(), nullable=False),
        sa.Column("confirmed_by", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", caserecord.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", caserecord.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", caserecord.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["acknowledged_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["confirmed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["note_id"], ["notes.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.ForeignKeyConstraint(["worker_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id", "category", "at_ms", name="uq_risk_alert_visit_moment"),
    )
    with op.batch_alter_table("risk_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_alerts_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_risk_alerts_confirmed_at"), ["confirmed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_risk_alerts_visit_id"), ["visit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_risk_alerts_worker_id"), ["worker_id"], unique=False)
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follow_up_booking_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_notes_follow_up_booking", "bookings", ["follow_up_booking_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notes_follow_up_booking", type_="foreignkey")
        batch_op.drop_column("follow_up_booking_id")
    op.drop_table("risk_alerts")
    op.drop_table("note_addenda")
    op.drop_table("note_revisions")
