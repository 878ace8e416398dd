# shellcheck shell=bash
# The Firestore emulator of the local cluster (sources.md "Firestore REST"): Google's
# google-cloud-cli-firestore-emulator package, started through gcloud on a loopback port.
# Sourced by dev/cluster (after dev/lib.sh), never executed.
#
# `gcloud emulators firestore start` is a Python process that runs a shell script that runs the
# emulator's JVM: stopping gcloud alone leaves the JVM serving. So the emulator is started with
# setsid in a process group of its own, and stopped by signalling that whole group.

FIRESTORE_PORT_BASE=18380
FIRESTORE_DIR=$LOCAL_DIR/firestore
FIRESTORE_PID_FILE=$LOCAL_DIR/firestore.pid  # the process group id (= gcloud's pid)
FIRESTORE_OUT=$FIRESTORE_DIR/emulator.out
FIRESTORE_PACKAGE=google-cloud-cli-firestore-emulator
FIRESTORE_LAUNCHER=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator

# Empty when the emulator can run here, else what is missing (dev/setup reports it).
firestore_missing() {
  command -v gcloud >/dev/null 2>&1 || { echo "gcloud (Debian package google-cloud-cli)"; return; }
  [ -x "$FIRESTORE_LAUNCHER" ] || { echo "the Firestore emulator (Debian package $FIRESTORE_PACKAGE, $FIRESTORE_LAUNCHER)"; return; }
  command -v java >/dev/null 2>&1 || echo "java (the emulator is a JVM program)"
}

# The process group of pid $1 ("" if gone), without forking: /proc/PID/stat after "(comm) " is
# "state ppid pgrp ...".
pgid_of() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  read -r _ _ stat _ <<<"$stat"
  echo "$stat"
}

# Is a process of group $1 our emulator (bound to our port)? Checks every member, since gcloud may
# already be gone while its JVM still serves.
is_our_firestore_group() {
  local pgid=$1 d cmd
  [ -n "$pgid" ] && [ -n "$FIRESTORE_PORT" ] || return 1
  for d in /proc/[0-9]*; do
    [ "$(pgid_of "${d#/proc/}")" = "$pgid" ] || continue
    cmd=$(proc_cmdline "${d#/proc/}")
    if [[ $cmd == *firestore* && ( $cmd == *"--host-port=127.0.0.1:$FIRESTORE_PORT"* || $cmd == *"--port=$FIRESTORE_PORT "* ) ]]; then
      return 0
    fi
  done
  return 1
}

# Prints the process group of our running emulator, or nothing. Falls back to scanning /proc for the
# emulator's JVM on our port (pid file lost, or gcloud killed on its own).
find_firestore_pgid() {
  local pgid d cmd
  [ -n "${FIRESTORE_PORT:-}" ] || return 0
  pgid=$(cat "$FIRESTORE_PID_FILE" 2>/dev/null || true)
  if is_our_firestore_group "$pgid"; then echo "$pgid"; return; fi
  for d in /proc/[0-9]*; do
    cmd=$(proc_cmdline "${d#/proc/}")
    if [[ $cmd == *CloudFirestore*"--port=$FIRESTORE_PORT "* ]]; then
      pgid_of "${d#/proc/}"
      return
    fi
  done
}

start_firestore() {
  local missing
  missing=$(firestore_missing)
  [ -z "$missing" ] || die "cannot start the Firestore emulator: $missing is missing (run dev/setup)"
  if [ -z "${FIRESTORE_PORT:-}" ] || port_in_use "$FIRESTORE_PORT"; then
    [ -n "${FIRESTORE_PORT:-}" ] && log "Firestore emulator port $FIRESTORE_PORT is taken; picking another"
    FIRESTORE_PORT=$(pick_port "$FIRESTORE_PORT_BASE" "${KAFKA_PORT:-}" "${KAFKA_CONTROLLER_PORT:-}" "${PG_PORT:-}")
  fi
  save_state
  mkdir -p "$FIRESTORE_DIR"
  [ -f "$FIRESTORE_OUT" ] && mv -f "$FIRESTORE_OUT" "$FIRESTORE_OUT.prev"
  # A bounded heap (seven clusters share one machine; 100,000 documents fit in 2 GiB); no update
  # checks or prompts from gcloud; its own config dir, so that no user-level gcloud state matters.
  # 9>&-: do not inherit the cluster lock.
  JAVA_TOOL_OPTIONS="-Xmx2g -XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
  CLOUDSDK_CONFIG="$FIRESTORE_DIR/gcloud" CLOUDSDK_CORE_DISABLE_PROMPTS=1 \
  CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=1 \
    setsid gcloud emulators firestore start --host-port="127.0.0.1:$FIRESTORE_PORT" \
    >"$FIRESTORE_OUT" 2>&1 </dev/null 9>&- &
  echo $! >"$FIRESTORE_PID_FILE"
  log "Firestore emulator starting (pid $!, port $FIRESTORE_PORT)"
}

firestore_ready() {
  [ "$(curl -s -m 2 "http://127.0.0.1:$FIRESTORE_PORT/" 2>/dev/null)" = Ok ]
}

wait_firestore() {
  local deadline=$1 pgid
  pgid=$(cat "$FIRESTORE_PID_FILE" 2>/dev/null || true)
  until firestore_ready; do
    if ! pid_alive "$pgid" && [ -z "$(find_firestore_pgid)" ]; then
      log "--- tail of $FIRESTORE_OUT"; tail -n 30 "$FIRESTORE_OUT" >&2 2>/dev/null || true
      die "the Firestore emulator exited during startup"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "--- tail of $FIRESTORE_OUT"; tail -n 30 "$FIRESTORE_OUT" >&2 2>/dev/null || true
      die "the Firestore emulator is not ready after ${WAIT_TIMEOUT}s"
    fi
    sleep 0.3
  done
}

stop_firestore() {
  local pgid i
  pgid=$(find_firestore_pgid)
  if [ -z "$pgid" ]; then
    log "Firestore emulator not running"
  else
    log "stopping the Firestore emulator (process group $pgid)"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      is_our_firestore_group "$pgid" || break
      sleep 0.1
    done
    if is_our_firestore_group "$pgid"; then
      log "the Firestore emulator did not stop in 10 s; SIGKILL"
      kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
  fi
  rm -f "$FIRESTORE_PID_FILE"
}
