# shellcheck shell=bash
# Shared helpers for dev/setup and dev/cluster. Sourced, never executed.
# Callers set `set -euo pipefail` and cd to the repo root before sourcing.

# The Kafka broker version fetched by deploy/local/pom.xml. Keep the two in step.
# 4.0.0 is forbidden: it dropped JoinGroup v0 and Debian's librdkafka 2.0.2 then
# cannot use consumer groups (see shared/docs/local-cluster.md).
KAFKA_VERSION=4.4.0

REPO_ROOT=$(pwd -P)
LOCAL_DIR=$REPO_ROOT/.local
KAFKA_DIR=$LOCAL_DIR/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_STAMP=$KAFKA_LIBS/.stamp

PG_BIN=/usr/lib/postgresql/15/bin
# Role name inside PostgreSQL (initdb -U); also the OS user PostgreSQL runs as
# when we are root, because postgres refuses to run as root.
PG_ROLE=leadsync
PG_SYSTEM_USER=leadsync

log() { printf '%s: %s\n' "${LOG_PREFIX:-dev}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Seconds with millisecond resolution, for timing reports.
now_ms() { date +%s%3N; }

# The OS user that owns the PostgreSQL data dir and runs the server.
pg_os_user() {
  if is_root; then echo "$PG_SYSTEM_USER"; else id -un; fi
}

# Run a command as the PostgreSQL OS user. As root that is `leadsync` via runuser
# (no shell involved, so arguments pass through untouched); otherwise ourselves.
as_pg_user() {
  if is_root; then
    runuser -u "$PG_SYSTEM_USER" -- "$@"
  else
    "$@"
  fi
}

# True if something listens on 127.0.0.1:$1 (or on the wildcard address).
port_in_use() {
  local p=$1
  if command -v ss >/dev/null 2>&1; then
    # -H no header, -l listening, -t tcp, -n numeric: any line means taken.
    [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]
  else
    # No ss: a successful connect means someone listens.
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
  fi
}

# pick_port BASE [EXCLUDED...]: first port >= BASE that is free and not excluded.
pick_port() {
  local p=$1; shift
  local limit=$((p + 500)) x skip
  while [ "$p" -lt "$limit" ]; do
    skip=
    for x in "$@"; do [ "$x" = "$p" ] && skip=1; done
    if [ -z "$skip" ] && ! port_in_use "$p"; then echo "$p"; return 0; fi
    p=$((p + 1))
  done
  die "no free port in [$1, $limit)"
}

# The NUL-separated command line of a pid, as one space-separated string ("" if gone).
proc_cmdline() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true
}

# True if pid $1 exists and is not a zombie. Zombies count as dead: here pid 1
# (not a real init) may reap orphans late, and kill -0 succeeds on a zombie.
pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }          # drop "pid (comm) ", comm may hold spaces
  [ "${stat%% *}" != Z ]
}
