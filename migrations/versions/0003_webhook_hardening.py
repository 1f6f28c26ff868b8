"""webhook hardening: nonces of signed URLs, the device a conversation is about

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhook_nonces',
    sa.Column('key', sa.String(length=96), nullable=False),
    sa.Column('delivery', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_webhook_nonces'))
    )
    with op.batch_alter_table('webhook_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_nonces_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('device_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_device_id'), ['device_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_conversations_device_id_devices'), 'devices', ['device_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversations_device_id_devices'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_conversations_device_id'))
        batch_op.drop_column('device_at')
        batch_op.drop_column('device_id')

    with op.batch_alter_table('webhook_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_nonces_created_at'))

    op.drop_table('webhook_nonces')
