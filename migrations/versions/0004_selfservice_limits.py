"""self-service limits: installation window flags, media

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:00:00

"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# INSTALL_WINDOW_DAYS's default: registrations made before the window existed are judged by it.
WINDOW_DAYS = 180


def upgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('installation_status', sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_devices_installation_status'),
            "installation_status IN ('counted', 'flagged')",
        )

    # Installations registered by installers before now: counted when inside the window.
    devices = sa.table(
        'devices',
        sa.column('id', sa.Integer()),
        sa.column('ship_date', sa.Date()),
        sa.column('installed_on', sa.Date()),
        sa.column('installer_id', sa.Integer()),
        sa.column('installation_status', sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(devices.c.id, devices.c.ship_date, devices.c.installed_on).where(
            devices.c.installer_id.is_not(None), devices.c.installed_on.is_not(None)
        )
    ).all()
    for row in rows:
        inside = row.ship_date is not None and (
            row.installed_on <= row.ship_date + timedelta(days=WINDOW_DAYS)
        )
        conn.execute(
            devices.update()
            .where(devices.c.id == row.id)
            .values(installation_status='counted' if inside else 'flagged')
        )


def downgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_devices_installation_status'), type_='check')
        batch_op.drop_column('installation_status')
