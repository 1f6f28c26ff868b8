"""staff accounts, skill groups, console queue

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name=op.f('ck_staff_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_api_tokens_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_staff_id'), ['staff_id'], unique=False)

    op.create_table('canned_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_replies'))
    )
    op.create_table('console_presence',
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], name=op.f('fk_console_presence_handoff_id_handoffs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_console_presence_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('handoff_id', 'staff_id', name=op.f('pk_console_presence'))
    )
    op.create_table('csat_ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=True),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_csat_ratings_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_ratings')),
    sa.UniqueConstraint('ticket_id', name=op.f('uq_csat_ratings_ticket_id'))
    )
    with op.batch_alter_table('csat_ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_csat_ratings_openid'), ['openid'], unique=False)

    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_chat_messages_staff_id_staff'), 'staff', ['staff_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_reason', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_handoffs_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_handoffs_queue', ['status', 'created_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_handoffs_assignee_id_staff'), 'staff', ['assignee_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('unanswered_questions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('kb_entry_id', sa.String(length=64), nullable=True))

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_tickets_queue', ['resolution_due', 'id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tickets_assignee_id_staff'), 'staff', ['assignee_id'], ['id'], ondelete='SET NULL')

    op.create_table('video_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('openid', sa.String(length=64), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('recording', sa.Boolean(), nullable=False),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('join_key_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('offer_sdp', sa.Text(), nullable=True),
    sa.Column('answer_sdp', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('created', 'joined', 'live', 'ended')", name=op.f('ck_video_sessions_status')),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], name=op.f('fk_video_sessions_handoff_id_handoffs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_video_sessions_staff_id_staff'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_video_sessions_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_video_sessions_token_hash'))
    )
    with op.batch_alter_table('video_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_sessions_handoff_id'), ['handoff_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_video_sessions_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_video_sessions_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('video_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('snapshot', 'photo', 'video', 'recording')", name=op.f('ck_video_media_kind')),
    sa.ForeignKeyConstraint(['session_id'], ['video_sessions.id'], name=op.f('fk_video_media_session_id_video_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video_media'))
    )
    with op.batch_alter_table('video_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_media_session_id'), ['session_id'], unique=False)

    # Tickets routed to an agent wait for them to take it; photos users send to agents; the
    # reports' daily rollup.
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_offered_at'), ['offered_at'], unique=False)

    op.create_table('chat_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('media_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'stored', 'failed')", name=op.f('ck_chat_photos_status')),
    sa.ForeignKeyConstraint(['message_id'], ['chat_messages.id'], name=op.f('fk_chat_photos_message_id_chat_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_photos')),
    sa.UniqueConstraint('message_id', name=op.f('uq_chat_photos_message_id'))
    )
    with op.batch_alter_table('chat_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_photos_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_photos_status'), ['status'], unique=False)

    op.create_table('report_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('messages_in', sa.Integer(), nullable=False),
    sa.Column('messages_out', sa.Integer(), nullable=False),
    sa.Column('sessions', sa.Integer(), nullable=False),
    sa.Column('contained', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_report_days'))
    )


def downgrade():
    op.drop_table('report_days')
    with op.batch_alter_table('chat_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_photos_status'))
        batch_op.drop_index(batch_op.f('ix_chat_photos_openid'))

    op.drop_table('chat_photos')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_offered_at'))
        batch_op.drop_column('offered_at')

    with op.batch_alter_table('video_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_media_session_id'))

    op.drop_table('video_media')
    with op.batch_alter_table('video_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_sessions_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_video_sessions_openid'))
        batch_op.drop_index(batch_op.f('ix_video_sessions_handoff_id'))

    op.drop_table('video_sessions')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_assignee_id_staff'), type_='foreignkey')
        batch_op.drop_index('ix_tickets_queue')
        batch_op.drop_index(batch_op.f('ix_tickets_assignee_id'))
        batch_op.drop_column('assignee_id')

    with op.batch_alter_table('unanswered_questions', schema=None) as batch_op:
        batch_op.drop_column('kb_entry_id')
        batch_op.drop_column('handled_at')

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_handoffs_assignee_id_staff'), type_='foreignkey')
        batch_op.drop_index('ix_handoffs_queue')
        batch_op.drop_index(batch_op.f('ix_handoffs_assignee_id'))
        batch_op.drop_column('closed_reason')
        batch_op.drop_column('overdue_at')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('assigned_at')
        batch_op.drop_column('assignee_id')
        batch_op.drop_column('group')

    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_chat_messages_staff_id_staff'), type_='foreignkey')
        batch_op.drop_column('staff_id')

    with op.batch_alter_table('csat_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_ratings_openid'))

    op.drop_table('csat_ratings')
    op.drop_table('console_presence')
    op.drop_table('canned_replies')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_staff_id'))

    op.drop_table('api_tokens')
    op.drop_table('staff')
