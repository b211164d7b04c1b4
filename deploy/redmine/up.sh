#!/usr/bin/env bash
# Start a throwaway Redmine 5.0.4 (Debian bookworm packages, SQLite) on loopback.
#
#   deploy/redmine/up.sh SCRATCH_DIR [PORT]
#
# Idempotent: installs the packages only when dpkg says they are missing, sets the
# instance up only once per scratch folder, and does nothing but report when the
# server of that folder is already up. PORT defaults to $REDMINE_PORT, then to the
# port used last time in SCRATCH_DIR, then to a free one.
#
# On success, stdout ends with machine-readable lines (no secret among them):
#   URL=http://127.0.0.1:PORT  PORT=...  PID=...  KEY_FILE=SCRATCH/api_key  INSTANCE=...
#   SCRATCH=...  CUSTOM_FIELDS_FILE=SCRATCH/custom_fields.json
#   USER_EXTERNAL_ID_FIELD=N  GROUP_EXTERNAL_ID_FIELD=M
# and SCRATCH holds the files port, pid, api_key (0600: the admin's REST key), url, and
# custom_fields.json: {"user": {"id": N, "name": "SCIM externalId"}, "group": {...}}, the
# custom fields that keep SCIM externalId; mappings/redmine takes their ids from
# REDMINE_USER_EXTERNAL_ID_FIELD and REDMINE_GROUP_EXTERNAL_ID_FIELD.
# Timings go to stderr as "timing: ..." lines. Stop it with deploy/redmine/down.sh.
#
# Exit codes: 0 up; 2 usage; 10 cannot install (not root, no apt-get/dpkg);
# 11 apt-get failed (e.g. no network to the Debian mirror); 12 port in use;
# 13 set-up (migrate/seed) failed; 14 server did not become ready.
# Whatever the failure, the last stderr line is "up.sh: ERROR: <reason>".
#
# Environment: REDMINE_PORT, REDMINE_START_TIMEOUT (seconds, default 180),
# REDMINE_INSTANCE_NAME (default derived from the scratch path), REDMINE_WATCH_PID
# (stop the server once that process is gone, for runners killed before teardown).
set -euo pipefail

APP=/usr/share/redmine
HERE=$(cd "$(dirname "$0")" && pwd -P)
PACKAGES=(redmine redmine-sqlite ruby-webrick)
T0=$EPOCHREALTIME

die() { # code message...
    local code=$1
    shift
    echo "up.sh: ERROR: $*" >&2
    exit "$code"
}
elapsed() { # since-epoch -> "12.3"
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}
timing() { echo "timing: $*" >&2; }
trap 'echo "up.sh: ERROR: line $LINENO: $BASH_COMMAND failed" >&2' ERR

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    sed -n '2,25p' "$0" >&2
    exit 2
fi
mkdir -p "$1"
SCRATCH=$(cd "$1" && pwd -P)
PORT=${2:-${REDMINE_PORT:-}}
if [ -z "$PORT" ] && [ -s "$SCRATCH/port" ]; then PORT=$(cat "$SCRATCH/port"); fi
NAME=${REDMINE_INSTANCE_NAME:-scimgw_$(printf %s "$SCRATCH" | sha1sum | cut -c1-12)}
[[ $NAME =~ ^[A-Za-z0-9_.-]+$ ]] || die 2 "bad instance name: $NAME"
[[ -z $PORT || $PORT =~ ^[0-9]+$ ]] || die 2 "bad port: $PORT"

# ---------------------------------------------------------------- packages
missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    t=$EPOCHREALTIME
    if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
        die 10 "apt-get/dpkg-query not found: cannot install ${missing[*]}"
    fi
    [ "$(id -u)" = 0 ] || die 10 "not root: cannot apt-get install ${missing[*]}"
    echo "up.sh: installing ${missing[*]} (apt-get, output in $SCRATCH/apt.log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-q -y --no-install-recommends -o DPkg::Lock::Timeout=300)
    {
        apt-get -q -o DPkg::Lock::Timeout=300 update &&
            apt-get install "${apt_opts[@]}" "${PACKAGES[@]}"
    } >"$SCRATCH/apt.log" 2>&1 || {
        tail -n 15 "$SCRATCH/apt.log" >&2
        reason=$(grep -E '^E:' "$SCRATCH/apt.log" | head -n 1 || true)
        [ -n "$reason" ] || reason=$(grep -E '^(Err|W):' "$SCRATCH/apt.log" | head -n 1 || true)
        die 11 "apt-get install ${missing[*]} failed${reason:+: $reason}"
    }
    timing "apt-get install $(elapsed "$t")s"
else
    timing "apt-get skipped (packages already installed)"
fi
[ -d "$APP" ] || die 10 "$APP missing after install"
[ -w "$APP/instances/" ] || die 10 "cannot write $APP/instances/ (not root?)"

# ------------------------------------------------ already running? report it
url="http://127.0.0.1:${PORT:-0}"
http_status() { # PORT -> HTTP status of GET /users/current.json with the key, or 000
    local port=$1 key line
    key=$(cat "$SCRATCH/api_key" 2>/dev/null) || key=
    # shellcheck disable=SC2016 # expanded by the inner bash
    # (the key goes by environment, not argv, to stay out of ps)
    line=$(
        REDMINE_PROBE_KEY=$key timeout 5 bash -c '
            exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
            printf "GET /users/current.json HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nX-Redmine-API-Key: %s\r\n\r\n" "$1" "$REDMINE_PROBE_KEY" >&3
            head -n 1 <&3' _ "$port" 2>/dev/null
    ) || true
    [[ $line =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]] && echo "${BASH_REMATCH[1]}" || echo 000
}
report() {
    printf '%s\n' "$PORT" >"$SCRATCH/port"
    printf '%s\n' "$url" >"$SCRATCH/url"
    echo "URL=$url"
    echo "PORT=$PORT"
    echo "PID=$(cat "$SCRATCH/pid")"
    echo "KEY_FILE=$SCRATCH/api_key"
    echo "INSTANCE=$NAME"
    echo "SCRATCH=$SCRATCH"
    echo "CUSTOM_FIELDS_FILE=$SCRATCH/custom_fields.json"
    ruby -rjson -e 'ids = JSON.parse(File.read(ARGV[0]))
        puts "USER_EXTERNAL_ID_FIELD=#{Integer(ids["user"]["id"])}"
        puts "GROUP_EXTERNAL_ID_FIELD=#{Integer(ids["group"]["id"])}"' "$SCRATCH/custom_fields.json"
}
ours_alive() { # the pid in SCRATCH/pid is a live rackup of this scratch folder
    local pid
    pid=$(cat "$SCRATCH/pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/environ" 2>/dev/null | grep -qF "REDMINE_INSTANCE=$NAME "
}
# A folder set up before the custom fields existed lacks custom_fields.json: restarted
# below, it gets them.
if [ -n "$PORT" ] && ours_alive && [ -s "$SCRATCH/custom_fields.json" ] &&
    [ "$(http_status "$PORT")" = 200 ]; then
    echo "up.sh: already running" >&2
    report
    timing "total $(elapsed "$T0")s (already running)"
    exit 0
fi
if ours_alive; then # alive but not answering (or another port asked): restart it
    "$HERE/down.sh" "$SCRATCH" >&2 || true
fi

# ---------------------------------------------------------------- instance
# Dangling links left by scratch folders that were deleted without down.sh.
for link in "$APP"/instances/scimgw_*; do
    [ -L "$link" ] && [ ! -e "$link" ] && rm -f "$link"
done
mkdir -p "$SCRATCH"/{config,db,log,tmp,files}
chmod 700 "$SCRATCH"
ln -sfnT "$SCRATCH" "$APP/instances/$NAME"
printf '%s\n' "$NAME" >"$SCRATCH/instance"
cat >"$SCRATCH/config/database.yml" <<EOF
production:
  adapter: sqlite3
  database: $SCRATCH/db/redmine.sqlite3
  pool: 16
  timeout: 10000
EOF
if [ ! -s "$SCRATCH/config/secret_key.txt" ]; then
    (umask 077 && od -An -N64 -tx1 /dev/urandom | tr -d ' \n' >"$SCRATCH/config/secret_key.txt")
fi
# Neither puma nor WEBrick is in Debian's Gemfile.
cat >"$SCRATCH/Gemfile" <<'EOF'
# Debian's Redmine Gemfile plus the WEBrick server that rackup needs.
eval_gemfile '/usr/share/redmine/Gemfile'
gem 'webrick'
EOF

# Debian's config.ru with requests serialized: under WEBrick's threads, concurrent
# writers on SQLite wait out the busy timeout and then answer 500 "database is locked".
cat >"$SCRATCH/config.ru" <<EOF
# Redmine ($APP/config.ru), one request at a time (SQLite).
require '$APP/config/environment'
use Rack::Lock
run Rails.application
EOF

export REDMINE_INSTANCE=$NAME RAILS_ENV=production BUNDLE_GEMFILE=$SCRATCH/Gemfile
unset RAILS_LOG_TO_STDOUT DATABASE_URL
cd "$APP"

if [ ! -f "$SCRATCH/.seeded" ] || [ ! -s "$SCRATCH/custom_fields.json" ]; then
    # Two processes: migrating and loading default data in one process fails silently.
    # (A folder seeded before the custom fields existed only runs the runner again.)
    if [ ! -f "$SCRATCH/.seeded" ]; then
        t=$EPOCHREALTIME
        rake db:migrate >"$SCRATCH/log/setup.log" 2>&1 || {
            tail -n 20 "$SCRATCH/log/setup.log" >&2
            die 13 "rake db:migrate failed (see $SCRATCH/log/setup.log)"
        }
        timing "rake db:migrate $(elapsed "$t")s"
    fi
    t=$EPOCHREALTIME
    cat >"$SCRATCH/tmp/seed.rb" <<'EOF'
# Default data (en), REST API on, admin usable over the API; key into a 0600 file.
# Every step is idempotent: a seeded folder may run this again.
require 'json'
if Redmine::DefaultData::Loader.no_data?
  Redmine::DefaultData::Loader.load('en')
end
if Tracker.count.zero? || IssueStatus.count.zero? || Role.givable.count.zero?
  abort 'default data did not load'
end
Setting.rest_api_enabled = '1'
abort 'REST API still disabled' unless Setting.rest_api_enabled?
admin = User.find_by_login('admin') or abort 'no admin user'
admin.update_column(:must_change_passwd, false)
File.open(ENV.fetch('REDMINE_KEY_FILE'), 'w', 0o600) { |f| f.puts admin.api_key }

# Custom fields keeping SCIM externalId (mappings/redmine), one for users, one for groups.
# The API reads and writes them as custom_fields: [{"id": N, "value": ...}] on users and
# groups, but lists a field only when it is `visible` (to admins too).
ids = {}
{ 'user' => UserCustomField, 'group' => GroupCustomField }.each do |kind, klass|
  field = klass.find_or_initialize_by(name: 'SCIM externalId')
  field.assign_attributes(
    field_format: 'string', is_required: false, visible: true, editable: false,
    searchable: false, is_filter: false,
    description: 'The identifier the identity provider gives this record (SCIM externalId).'
  )
  field.save!
  ids[kind] = { 'id' => field.id, 'name' => field.name }
end
File.write(ENV.fetch('REDMINE_CUSTOM_FIELDS_FILE'), JSON.generate(ids) + "\n")
puts "seeded: trackers=#{Tracker.count} statuses=#{IssueStatus.count} roles=#{Role.count} " \
     "custom fields: user=#{ids['user']['id']} group=#{ids['group']['id']}"
EOF
    rm -f "$SCRATCH/api_key" "$SCRATCH/custom_fields.json"
    if ! REDMINE_KEY_FILE=$SCRATCH/api_key REDMINE_CUSTOM_FIELDS_FILE=$SCRATCH/custom_fields.json \
        rails runner "$SCRATCH/tmp/seed.rb" >>"$SCRATCH/log/setup.log" 2>&1 ||
        [ ! -s "$SCRATCH/api_key" ] || [ ! -s "$SCRATCH/custom_fields.json" ]; then
        tail -n 20 "$SCRATCH/log/setup.log" >&2
        die 13 "rails runner (default data, REST API, admin key, custom fields) failed (see $SCRATCH/log/setup.log)"
    fi
    touch "$SCRATCH/.seeded"
    timing "default data + settings + custom fields (rails runner) $(elapsed "$t")s"
fi

# ---------------------------------------------------------------- server
if [ -z "$PORT" ]; then
    PORT=$(ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); print s.addr[1]; s.close')
fi
url="http://127.0.0.1:$PORT"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die 12 "port $PORT is already in use on 127.0.0.1"
fi
t=$EPOCHREALTIME
: >"$SCRATCH/log/rackup.log"
# setsid: own session, so the caller's Ctrl-C or process group kill does not reach it;
# all fds redirected, so a caller reading our stdout sees EOF when this script ends.
setsid rackup -E production -s webrick -o 127.0.0.1 -p "$PORT" "$SCRATCH/config.ru" \
    </dev/null >>"$SCRATCH/log/rackup.log" 2>&1 &
pid=$!
printf '%s\n' "$pid" >"$SCRATCH/pid"
deadline=$((SECONDS + ${REDMINE_START_TIMEOUT:-180}))
while :; do
    code=$(http_status "$PORT")
    [ "$code" = 200 ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$SCRATCH/log/rackup.log" >&2
        rm -f "$SCRATCH/pid"
        grep -q 'Address already in use' "$SCRATCH/log/rackup.log" &&
            die 12 "port $PORT is already in use on 127.0.0.1"
        die 14 "rackup exited before answering (see $SCRATCH/log/rackup.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
        tail -n 20 "$SCRATCH/log/rackup.log" >&2
        "$HERE/down.sh" "$SCRATCH" >&2 || true
        die 14 "no 200 from GET /users/current.json on port $PORT within ${REDMINE_START_TIMEOUT:-180}s (last status $code)"
    fi
    sleep 0.25
done
timing "rackup until GET /users/current.json = 200: $(elapsed "$t")s"
# Optional watchdog: stop this server when REDMINE_WATCH_PID (e.g. a test runner
# that was SIGKILLed before its teardown) goes away. It leaves quietly when the
# server stops first, so it never touches a later server of the same folder.
if [[ ${REDMINE_WATCH_PID:-} =~ ^[0-9]+$ ]]; then
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid bash -c '
        while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 2; done
        if kill -0 "$2" 2>/dev/null; then
            echo "watchdog: pid $1 is gone, stopping Redmine pid $2"
            exec "$3" "$4"
        fi' _ "$REDMINE_WATCH_PID" "$pid" "$HERE/down.sh" "$SCRATCH" \
        </dev/null >>"$SCRATCH/log/watchdog.log" 2>&1 &
fi
report
timing "total $(elapsed "$T0")s"
