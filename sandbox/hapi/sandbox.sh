#!/usr/bin/env bash
# HAPI FHIR R4 JPA sandbox launcher (H2 in memory). See README.md beside this file.
#
#   sandbox.sh build    build only if pom.xml/src changed since the last successful build
#   sandbox.sh start    build if needed, start in the background, wait for /fhir/metadata
#   sandbox.sh stop     SIGTERM (then SIGKILL after HAPI_STOP_TIMEOUT s), remove the pid file
#   sandbox.sh status   say whether it runs and answers
#   sandbox.sh wait     wait until /fhir/metadata answers 200 (HAPI_START_TIMEOUT)
#   sandbox.sh run      build if needed, run in the foreground (extra args go to the app)
#
# Environment:
#   HAPI_PORT (8080)            HTTP port; base URL is http://127.0.0.1:$HAPI_PORT/fhir
#   HAPI_JAVA_OPTS              JVM options (replaces the defaults below)
#   HAPI_LOG                    server log (target/hapi.log)
#   HAPI_PID_FILE               pid file (target/hapi-$HAPI_PORT.pid)
#   HAPI_START_TIMEOUT (300)    seconds to wait for /fhir/metadata
#   HAPI_STOP_TIMEOUT (30)      seconds to wait after SIGTERM before SIGKILL
#   HAPI_WARMUP (1)             after start, POST one Observation/$validate so the (lazy, ~5-10 s)
#                               validator is loaded before tests run; 0 to skip
#   MVN (mvn), MAVEN_OPTS, MAVEN_ARGS   passed through to Maven unchanged
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="$HERE/target"
MAIN_CLASS="org.infusionbridge.sandbox.HapiSandboxApplication"
PORT="${HAPI_PORT:-8080}"
LOG="${HAPI_LOG:-$TARGET/hapi.log}"
PID_FILE="${HAPI_PID_FILE:-$TARGET/hapi-$PORT.pid}"
START_TIMEOUT="${HAPI_START_TIMEOUT:-300}"
STOP_TIMEOUT="${HAPI_STOP_TIMEOUT:-30}"
DEFAULT_JAVA_OPTS="-Xms256m -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss1m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dfile.encoding=UTF-8"
JAVA_OPTS="${HAPI_JAVA_OPTS:-$DEFAULT_JAVA_OPTS}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
MVN="${MVN:-mvn}"
BASE_URL="http://127.0.0.1:$PORT/fhir"
STAMP="$TARGET/.build-stamp"
CLASSPATH_FILE="$TARGET/classpath.txt"
BUILD_LOG="$TARGET/build.log"

log() { echo "[hapi-sandbox] $*" >&2; }

# Hash of everything that affects the build output.
source_hash() {
    (
        cd "$HERE"
        { echo pom.xml; find src -type f; } | LC_ALL=C sort | while read -r f; do
            printf '%s  ' "$f"
            sha256sum <"$f" | cut -d' ' -f1
        done
    ) | sha256sum | cut -d' ' -f1
}

classpath_ok() {
    [[ -s "$CLASSPATH_FILE" && -d "$TARGET/classes/org" ]] || return 1
    local jar
    local IFS=':'
    for jar in $(cat "$CLASSPATH_FILE"); do
        [[ -f "$jar" ]] || return 1
    done
}

cmd_build() {
    local want
    want="$(source_hash)"
    if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && classpath_ok; then
        log "build: up to date (pom.xml and src unchanged), skipping"
        return 0
    fi
    mkdir -p "$TARGET"
    rm -f "$STAMP"
    log "build: $MVN -B -q compile (log: $BUILD_LOG) ..."
    local t0=$SECONDS
    # shellcheck disable=SC2086
    if ! (cd "$HERE" && "$MVN" -B -q ${MAVEN_ARGS:-} compile) >"$BUILD_LOG" 2>&1; then
        log "build: FAILED after $((SECONDS - t0)) s; last lines of $BUILD_LOG:"
        tail -n 60 "$BUILD_LOG" >&2
        return 1
    fi
    if ! classpath_ok; then
        log "build: Maven succeeded but $CLASSPATH_FILE or target/classes is missing"
        return 1
    fi
    echo "$want" >"$STAMP"
    log "build: done in $((SECONDS - t0)) s"
}

# The pid recorded in the pid file, if that process is still alive.
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# True when GET /fhir/metadata answers 200 with a CapabilityStatement.
metadata_ok() {
    local body
    body="$(curl -fsS --max-time 5 -H 'Accept: application/fhir+json' "$BASE_URL/metadata" 2>/dev/null)" || return 1
    [[ "$body" == *'"CapabilityStatement"'* ]]
}

# Fills the array JAVA_CMD with the server command line (extra args are passed to the app).
# True when something accepts TCP connections on 127.0.0.1:$PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

java_cmd() {
    local cp
    cp="$TARGET/classes:$(cat "$CLASSPATH_FILE")"
    # shellcheck disable=SC2206
    JAVA_CMD=("$JAVA" $JAVA_OPTS -cp "$cp" "$MAIN_CLASS" "--server.port=$PORT" "$@")
}

# wait_ready PID: poll /fhir/metadata until ready, the process dies, or the timeout.
wait_ready() {
    local pid="${1:-}" t0=$SECONDS
    log "waiting for $BASE_URL/metadata (timeout ${START_TIMEOUT} s) "
    while true; do
        if metadata_ok; then
            echo >&2
            log "ready after $((SECONDS - t0)) s: $BASE_URL"
            return 0
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo >&2
            log "server process $pid died; last 50 lines of $LOG:"
            tail -n 50 "$LOG" >&2 || true
            rm -f "$PID_FILE"
            return 1
        fi
        if ((SECONDS - t0 >= START_TIMEOUT)); then
            echo >&2
            log "timed out after ${START_TIMEOUT} s; last 50 lines of $LOG:"
            tail -n 50 "$LOG" >&2 || true
            return 1
        fi
        local el=$((SECONDS - t0))
        if ((el > 0 && el % 10 == 0)); then printf '%ss' "$el" >&2; else printf '.' >&2; fi
        sleep 1
    done
}

cmd_start() {
    local pid
    if metadata_ok; then
        if pid="$(running_pid)"; then
            log "already running (pid $pid) at $BASE_URL"
        else
            log "a FHIR server already answers at $BASE_URL (not started by this script); using it"
        fi
        return 0
    fi
    if pid="$(running_pid)"; then
        log "process $pid from $PID_FILE is still starting"
        wait_ready "$pid"
        return $?
    fi
    if port_in_use; then
        log "port $PORT is taken by something that is not a FHIR server (no CapabilityStatement at $BASE_URL/metadata); set HAPI_PORT"
        return 1
    fi
    cmd_build
    mkdir -p "$(dirname "$LOG")" "$(dirname "$PID_FILE")"
    java_cmd
    log "starting on port $PORT (log: $LOG)"
    : >"$LOG"
    # setsid: own session, so the server survives the calling shell; the inner shell writes its own
    # pid and then execs java, so the pid file names the JVM itself.
    rm -f "$PID_FILE"
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" "${JAVA_CMD[@]}" \
        </dev/null >>"$LOG" 2>&1 &
    local i
    for i in $(seq 1 50); do
        [[ -s "$PID_FILE" ]] && break
        sleep 0.1
    done
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    log "pid ${pid:-?}"
    if ! wait_ready "$pid"; then
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            log "stopping the unready server"
            cmd_stop || true
        fi
        return 1
    fi
    warmup
}

# One $validate call: the first one loads the validator and takes several seconds.
warmup() {
    [[ "${HAPI_WARMUP:-1}" == "0" ]] && return 0
    local t0=$SECONDS code
    code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 120 -X POST \
        -H 'Content-Type: application/fhir+json' "$BASE_URL/Observation/\$validate" \
        -d '{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}' \
        2>/dev/null || true)"
    log "warm-up \$validate: HTTP $code in $((SECONDS - t0)) s"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        if metadata_ok; then
            log "not started by this script, but something answers at $BASE_URL; leaving it alone"
        else
            log "not running"
        fi
        return 0
    fi
    log "stopping pid $pid (SIGTERM, up to ${STOP_TIMEOUT} s)"
    kill -TERM "$pid" 2>/dev/null || true
    local t0=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS - t0 >= STOP_TIMEOUT)); then
            log "still alive after ${STOP_TIMEOUT} s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid rss
    if pid="$(running_pid)"; then
        rss="$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
        if metadata_ok; then
            log "running: pid $pid, RSS ${rss:-?} KiB, ready at $BASE_URL"
        else
            log "running: pid $pid, RSS ${rss:-?} KiB, not answering yet at $BASE_URL"
        fi
        return 0
    fi
    if metadata_ok; then
        log "a FHIR server answers at $BASE_URL (no pid file: not started by this script)"
        return 0
    fi
    log "not running"
    return 3
}

cmd_wait() {
    local pid=""
    pid="$(running_pid || true)"
    wait_ready "$pid"
}

cmd_run() {
    cmd_build
    java_cmd "$@"
    exec "${JAVA_CMD[@]}"
}

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
    local sub="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$sub" in
        build) cmd_build "$@" ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        restart) cmd_stop && cmd_start ;;
        status) cmd_status ;;
        wait) cmd_wait ;;
        run) cmd_run "$@" ;;
        -h | --help | help | "") usage ;;
        *)
            log "unknown command: $sub"
            usage
            exit 2
            ;;
    esac
}

main "$@"
