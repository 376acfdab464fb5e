"""petitions and triage results

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 17:06:22.138498
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('petitions',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_masked', sa.Text(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('petitioner_id', sa.String(length=128), nullable=True),
    sa.Column('petitioner_name', sa.String(length=64), nullable=True),
    sa.Column('petitioner_phone', sa.String(length=32), nullable=True),
    sa.Column('location_text', sa.Text(), nullable=True),
    sa.Column('likes', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=True),
    sa.Column('place', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('petitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_petitions_petitioner_id'), ['petitioner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_petitioner_phone'), ['petitioner_phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_status'), ['status'], unique=False)

    op.create_table('triage_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('petition_id', sa.String(length=128), nullable=False),
    sa.Column('model_version', sa.String(length=128), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('top_department', sa.String(length=64), nullable=True),
    sa.Column('needs_review', sa.Boolean(), nullable=False),
    sa.Column('risk_level', sa.String(length=16), nullable=False),
    sa.Column('top_score', sa.Float(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['petition_id'], ['petitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('triage_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_triage_results_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_triage_results_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_triage_results_petition_created', ['petition_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_triage_results_petition_id'), ['petition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_triage_results_risk_level'), ['risk_level'], unique=False)
        batch_op.create_index(batch_op.f('ix_triage_results_top_department'), ['top_department'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('triage_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_triage_results_top_department'))
        batch_op.drop_index(batch_op.f('ix_triage_results_risk_level'))
        batch_op.drop_index(batch_op.f('ix_triage_results_petition_id'))
        batch_op.drop_index('ix_triage_results_petition_created')
        batch_op.drop_index(batch_op.f('ix_triage_results_created_at'))
        batch_op.drop_index(batch_op.f('ix_triage_results_category'))

    op.drop_table('triage_results')
    with op.batch_alter_table('petitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_petitions_status'))
        batch_op.drop_index(batch_op.f('ix_petitions_received_at'))
        batch_op.drop_index(batch_op.f('ix_petitions_petitioner_phone'))
        batch_op.drop_index(batch_op.f('ix_petitions_petitioner_id'))

    op.drop_table('petitions')
