#!/usr/bin/env bash
# Stop the Redmine that deploy/redmine/up.sh started for SCRATCH_DIR and unlink its
# instance. Idempotent; leaves SCRATCH_DIR (database, logs) in place.
#
#   deploy/redmine/down.sh SCRATCH_DIR
set -euo pipefail

[ $# -eq 1 ] || {
    sed -n '2,5p' "$0" >&2
    exit 2
}
[ -d "$1" ] || exit 0
SCRATCH=$(cd "$1" && pwd -P)
APP=/usr/share/redmine
NAME=$(cat "$SCRATCH/instance" 2>/dev/null || true)
T0=$EPOCHREALTIME

pid=$(cat "$SCRATCH/pid" 2>/dev/null || true)
# Only signal a live process that really is this instance's server (pids get reused).
if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/environ" 2>/dev/null | grep -qF "REDMINE_INSTANCE=$NAME "; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "down.sh: pid $pid ignored SIGTERM for 10 s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "down.sh: stopped pid $pid" >&2
fi
rm -f "$SCRATCH/pid"
if [ -n "$NAME" ] && [ -L "$APP/instances/$NAME" ]; then
    rm -f "$APP/instances/$NAME"
fi
awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "timing: down %.1fs\n", b - a }' >&2
