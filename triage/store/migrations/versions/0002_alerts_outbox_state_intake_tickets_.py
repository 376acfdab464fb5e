"""alerts outbox state intake tickets feedback

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:11:03.848735
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('intake_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('ticket_id', sa.String(length=32), nullable=True),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('intake_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_sessions_status'), ['status'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('receiver', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    op.create_table('service_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('ticket_sequences',
    sa.Column('day', sa.String(length=8), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('petition_id', sa.String(length=128), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('types', sa.JSON(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acked_by', sa.String(length=128), nullable=True),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ack_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['petition_id'], ['petitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('petition_id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_status'), ['status'], unique=False)

    op.create_table('routing_feedback',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('petition_id', sa.String(length=128), nullable=False),
    sa.Column('ticket_id', sa.String(length=32), nullable=True),
    sa.Column('model_version', sa.String(length=128), nullable=True),
    sa.Column('model_category', sa.String(length=32), nullable=True),
    sa.Column('model_department_id', sa.String(length=64), nullable=True),
    sa.Column('chosen_category', sa.String(length=32), nullable=True),
    sa.Column('chosen_department_id', sa.String(length=64), nullable=False),
    sa.Column('overridden', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['petition_id'], ['petitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('routing_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routing_feedback_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_routing_feedback_overridden'), ['overridden'], unique=False)
        batch_op.create_index(batch_op.f('ix_routing_feedback_petition_id'), ['petition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routing_feedback_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('tickets',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('petition_id', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('urgency', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('department_id', sa.String(length=64), nullable=True),
    sa.Column('level', sa.String(length=32), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accept_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reply_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accept_overdue', sa.Boolean(), nullable=False),
    sa.Column('reply_overdue', sa.Boolean(), nullable=False),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('last_escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['petition_id'], ['petitions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('petition_id')
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_department_id'), ['department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_reply_overdue'), ['reply_overdue'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_state'), ['state'], unique=False)

    op.create_table('ticket_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_events_ticket_id'), ['ticket_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_events_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_events_at'))

    op.drop_table('ticket_events')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_state'))
        batch_op.drop_index(batch_op.f('ix_tickets_reply_overdue'))
        batch_op.drop_index(batch_op.f('ix_tickets_department_id'))

    op.drop_table('tickets')
    with op.batch_alter_table('routing_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routing_feedback_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_routing_feedback_petition_id'))
        batch_op.drop_index(batch_op.f('ix_routing_feedback_overridden'))
        batch_op.drop_index(batch_op.f('ix_routing_feedback_created_at'))

    op.drop_table('routing_feedback')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_status'))
        batch_op.drop_index(batch_op.f('ix_alerts_level'))
        batch_op.drop_index(batch_op.f('ix_alerts_created_at'))

    op.drop_table('alerts')
    op.drop_table('ticket_sequences')
    op.drop_table('service_state')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_next_attempt_at'))

    op.drop_table('outbox')
    with op.batch_alter_table('intake_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_sessions_status'))

    op.drop_table('intake_sessions')
