#!/usr/bin/env bash
# Nightly backup of kefu: a PostgreSQL dump and the media folder, kept for KEEP_DAYS days.
# Run by root from cron or a systemd timer, e.g. /etc/cron.d/kefu-backup:
#   15 3 * * * root /opt/kefu/deploy/backup.sh
# Restore: docs/deploy.md ("Backups").
set -euo pipefail
source /etc/kefu/kefu.env
BACKUP_DIR=${BACKUP_DIR:-/var/backups/kefu}
KEEP_DAYS=${KEEP_DAYS:-14}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BACKUP_DIR"
chmod 700 "$BACKUP_DIR"
# Custom format: compressed, restorable table by table with pg_restore; consistent without
# stopping kefu (one snapshot).
pg_dump --format=custom --no-owner --file="$BACKUP_DIR/kefu-$stamp.dump" "${DATABASE_URL}"
# Media (manuals, photos, firmware, customers' proof photos): files are only ever added or
# replaced, so a tarball taken after the dump holds everything the dump refers to.
tar -C "$(dirname "$MEDIA_ROOT")" -czf "$BACKUP_DIR/media-$stamp.tar.gz" "$(basename "$MEDIA_ROOT")"
if [ -n "${PROOF_ROOT:-}" ] && [ -d "$PROOF_ROOT" ]; then
  tar -C "$(dirname "$PROOF_ROOT")" -czf "$BACKUP_DIR/proofs-$stamp.tar.gz" "$(basename "$PROOF_ROOT")"
fi
find "$BACKUP_DIR" -type f -mtime +"$KEEP_DAYS" -delete
echo "kefu backup $stamp written to $BACKUP_DIR"
