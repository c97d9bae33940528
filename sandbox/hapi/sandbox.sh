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
# For the launcher library: pid file, readiness wait, stop, status.
LOG_TAG="hapi-sandbox"
READY_PROBE=metadata_ok
READY_URL="$BASE_URL/metadata"
SERVED="$BASE_URL"
FOREIGN="a FHIR server answers at $BASE_URL"
STATUS_NOTE=""
PROCESS_GROUP=0 # the pid is the JVM itself (the inner shell execs java)

# shellcheck source=SCRIPTDIR/../lib/launcher.sh
source "$HERE/../lib/launcher.sh"

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

# True when GET /fhir/metadata answers 200 with a CapabilityStatement.
metadata_ok() {
    local body
    body="$(curl -fsS --max-time 5 -H 'Accept: application/fhir+json' "$BASE_URL/metadata" 2>/dev/null)" || return 1
    [[ "$body" == *'"CapabilityStatement"'* ]]
}

# Fills the array JAVA_CMD with the server command line (extra args are passed to the app).
java_cmd() {
    local cp
    cp="$TARGET/classes:$(cat "$CLASSPATH_FILE")"
    # shellcheck disable=SC2206
    JAVA_CMD=("$JAVA" $JAVA_OPTS -cp "$cp" "$MAIN_CLASS" "--server.port=$PORT" "$@")
}

# What start does when nothing answers at $BASE_URL and no process of ours is starting.
start_fresh() {
    if port_in_use "$PORT"; then
        log "port $PORT is taken by something that is not a FHIR server (no CapabilityStatement at $BASE_URL/metadata); set HAPI_PORT"
        return 1
    fi
    cmd_build
    java_cmd
    log "starting on port $PORT (log: $LOG)"
    spawn "${JAVA_CMD[@]}" || return 1
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

cmd_run() {
    cmd_build
    java_cmd "$@"
    exec "${JAVA_CMD[@]}"
}

main() {
    case "${1:-}" in
        build) cmd_build "${@:2}" ;;
        run) cmd_run "${@:2}" ;;
        *) launcher_main "$@" ;;
    esac
}

main "$@"
