#!/usr/bin/env bash
# Keycloak sandbox (start-dev, HTTP, H2 file DB per port) with the demo realm "infusion-bridge".
# See README.md beside this file.
#
#   keycloak.sh fetch [--force]  download keycloak-quarkus-dist (Maven Central, via ~/.m2), unpack into target/
#   keycloak.sh start            fetch if needed, start in the background, wait for the realm's discovery doc
#   keycloak.sh stop             SIGTERM (then SIGKILL after KEYCLOAK_STOP_TIMEOUT s), remove the pid file
#   keycloak.sh restart          stop, then start
#   keycloak.sh status           say whether it runs and answers (exit 3 if not running)
#   keycloak.sh wait             wait until the realm's /.well-known/openid-configuration answers
#   keycloak.sh wipe             delete this port's data dir (only while stopped); next start re-imports the realm
#
# Environment:
#   KEYCLOAK_VERSION (26.7.3)        org.keycloak:keycloak-quarkus-dist version
#   KEYCLOAK_PORT (8180)             HTTP port; issuer is http://127.0.0.1:$KEYCLOAK_PORT/realms/infusion-bridge
#   KEYCLOAK_MANAGEMENT_PORT (port+1000)  management interface (/health/ready, /health/live)
#   KEYCLOAK_HOSTNAME (http://127.0.0.1:$KEYCLOAK_PORT)  fixed front-end URL, so `iss` never depends on the Host header
#   KEYCLOAK_DATA_DIR (target/data-$KEYCLOAK_PORT)  H2 database and transaction logs of this instance
#   KEYCLOAK_LOG (target/keycloak-$KEYCLOAK_PORT.log), KEYCLOAK_PID_FILE (target/keycloak-$KEYCLOAK_PORT.pid)
#   KEYCLOAK_START_TIMEOUT (180) / KEYCLOAK_STOP_TIMEOUT (30)   seconds
#   KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD (admin/admin)  master-realm bootstrap admin (first start of a data dir)
#   KEYCLOAK_JAVA_HOME               JDK for Keycloak (default: JAVA_HOME if 21+, else newest 21+ in /usr/lib/jvm,
#                                    else JAVA_HOME or `java` on PATH; needs 17+)
#   KEYCLOAK_JAVA_OPTS               JVM options (replaces DEFAULT_JAVA_OPTS below)
#   KEYCLOAK_KEEP_DATA (0)           1: keep a data dir even if the realm file changed (the realm is then NOT re-imported)
#   KEYCLOAK_EXTRA_ARGS              extra `kc.sh start-dev` arguments (runtime options only; see README)
#   MVN (mvn), MAVEN_OPTS, MAVEN_ARGS   passed through to Maven unchanged
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="$HERE/target"
VERSION="${KEYCLOAK_VERSION:-26.7.3}"
REALM="infusion-bridge"
REALM_FILE="$HERE/realm/infusion-bridge-realm.json"
PORT="${KEYCLOAK_PORT:-8180}"
MGMT_PORT="${KEYCLOAK_MANAGEMENT_PORT:-$((PORT + 1000))}"
HOSTNAME_URL="${KEYCLOAK_HOSTNAME:-http://127.0.0.1:$PORT}"
KC_HOME="$TARGET/keycloak-$VERSION"
DATA_DIR="${KEYCLOAK_DATA_DIR:-$TARGET/data-$PORT}"
LOG="${KEYCLOAK_LOG:-$TARGET/keycloak-$PORT.log}"
PID_FILE="${KEYCLOAK_PID_FILE:-$TARGET/keycloak-$PORT.pid}"
START_TIMEOUT="${KEYCLOAK_START_TIMEOUT:-180}"
STOP_TIMEOUT="${KEYCLOAK_STOP_TIMEOUT:-30}"
DEFAULT_JAVA_OPTS="-Xms64m -Xmx512m -XX:MetaspaceSize=96M -XX:MaxMetaspaceSize=256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.security.egd=file:/dev/urandom -Dfile.encoding=UTF-8"
JAVA_OPTS_KC="${KEYCLOAK_JAVA_OPTS:-$DEFAULT_JAVA_OPTS}"
KC_JAVA_HOME=""  # set by pick_java
MVN="${MVN:-mvn}"
BASE_URL="http://127.0.0.1:$PORT"
ISSUER="$HOSTNAME_URL/realms/$REALM"
DISCOVERY_URL="$BASE_URL/realms/$REALM/.well-known/openid-configuration"
FETCH_STAMP="$KC_HOME/.fetch-stamp"
REALM_STAMP="$DATA_DIR/.realm-stamp"
LOCK_FILE="$TARGET/.start.lock"
MIN_JAVA=17
PREFERRED_JAVA=21
# Build-time options: kept fixed, because changing them re-augments lib/quarkus of the shared
# distribution (about 25 s) under any other instance running from it.
BUILD_OPTS=(--cache=local --health-enabled=true --metrics-enabled=false)
# For the launcher library: pid file, readiness wait, stop, status.
LOG_TAG="keycloak-sandbox"
READY_PROBE=discovery_ok
READY_URL="$DISCOVERY_URL"
SERVED="issuer $ISSUER"
FOREIGN="realm $REALM answers at $BASE_URL"
STATUS_NOTE="(admin console $BASE_URL/admin/, health http://127.0.0.1:$MGMT_PORT/health/ready)"
# The pid is kc.sh, which runs java as its child (or execs it after a re-augmentation) and
# forwards SIGTERM to it; only a SIGKILL has to reach the whole group.
PROCESS_GROUP=1

# shellcheck source=SCRIPTDIR/../lib/launcher.sh
source "$HERE/../lib/launcher.sh"

java_bin() { echo "${KC_JAVA_HOME:+$KC_JAVA_HOME/bin/}java"; }

# java_major [HOME]: major version of the JDK in HOME (default: the one picked), e.g. 17, 25.
java_major() {
    local line java="${1:+$1/bin/}java"
    [[ $# -gt 0 ]] || java="$(java_bin)"
    line="$("$java" -version 2>&1 | head -n 1)" || return 1
    line="${line#*\"}"
    line="${line%%\"*}"
    line="${line#1.}"
    line="${line%%[.+-]*}"
    [[ "$line" =~ ^[0-9]+$ ]] || return 1
    echo "$line"
}

# Pick the JDK: KEYCLOAK_JAVA_HOME; else JAVA_HOME if it is 21+; else the newest 21+ JDK in
# /usr/lib/jvm (Keycloak 26 recommends 21+; here 25 also started faster than 17); else
# JAVA_HOME or `java` on PATH, which must be 17+.
pick_java() {
    local major best="" best_major=0 dir m
    if [[ -n "${KEYCLOAK_JAVA_HOME:-}" ]]; then
        KC_JAVA_HOME="$KEYCLOAK_JAVA_HOME"
    elif [[ -n "${JAVA_HOME:-}" ]] && m="$(java_major "$JAVA_HOME")" && ((m >= PREFERRED_JAVA)); then
        KC_JAVA_HOME="$JAVA_HOME"
    else
        for dir in /usr/lib/jvm/*/; do
            dir="${dir%/}"
            [[ -L "$dir" || ! -x "$dir/bin/java" ]] && continue
            m="$(java_major "$dir")" || continue
            if ((m >= PREFERRED_JAVA && m > best_major)); then
                best="$dir"
                best_major=$m
            fi
        done
        KC_JAVA_HOME="${best:-${JAVA_HOME:-}}"
    fi
    if ! major="$(java_major)"; then
        log "no usable java at '$(java_bin)'; set KEYCLOAK_JAVA_HOME (e.g. /usr/lib/jvm/temurin-25-jdk-amd64)"
        return 1
    fi
    if ((major < MIN_JAVA)); then
        log "Keycloak $VERSION needs Java $MIN_JAVA+, '$(java_bin)' is Java $major; set KEYCLOAK_JAVA_HOME"
        return 1
    fi
    ((major >= PREFERRED_JAVA)) || log "note: running on Java $major; Keycloak 26 recommends 21+ (set KEYCLOAK_JAVA_HOME)"
}

realm_hash() {
    { echo "keycloak $VERSION"; cat "$HERE"/realm/*-realm.json; } | sha256sum | cut -d' ' -f1
}

cmd_fetch() {
    if [[ "${1:-}" != "--force" && -x "$KC_HOME/bin/kc.sh" && -f "$FETCH_STAMP" && "$(cat "$FETCH_STAMP")" == "$VERSION" ]]; then
        log "fetch: keycloak $VERSION already unpacked in $KC_HOME, skipping"
        return 0
    fi
    mkdir -p "$TARGET"
    local dl="$TARGET/download" t0=$SECONDS fetch_log="$TARGET/fetch.log"
    local artifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip"
    rm -rf "$dl"
    log "fetch: $artifact from Maven Central (into ~/.m2, log: $fetch_log) ..."
    # shellcheck disable=SC2086
    if ! "$MVN" -B -q ${MAVEN_ARGS:-} org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        "-Dartifact=$artifact" "-DoutputDirectory=$dl" -Dmdep.overWriteReleases=true >"$fetch_log" 2>&1; then
        log "fetch: FAILED after $((SECONDS - t0)) s (is Maven Central reachable? does $VERSION exist?); last lines of $fetch_log:"
        tail -n 40 "$fetch_log" >&2
        return 1
    fi
    local zip="$dl/keycloak-quarkus-dist-$VERSION.zip"
    [[ -s "$zip" ]] || { log "fetch: Maven succeeded but $zip is missing"; return 1; }
    log "fetch: downloaded in $((SECONDS - t0)) s; unpacking ..."
    rm -rf "$KC_HOME" "$TARGET/unpack"
    mkdir -p "$TARGET/unpack"
    if ! unzip -q "$zip" -d "$TARGET/unpack"; then
        log "fetch: unzip of $zip failed"
        return 1
    fi
    mv "$TARGET/unpack/keycloak-$VERSION" "$KC_HOME"
    rm -rf "$TARGET/unpack" "$dl"
    echo "$VERSION" >"$FETCH_STAMP"
    log "fetch: keycloak $VERSION ready in $KC_HOME after $((SECONDS - t0)) s"
}

# True when the realm's discovery document answers 200 with the expected issuer.
discovery_ok() {
    local body
    body="$(curl -fsS --max-time 5 "$DISCOVERY_URL" 2>/dev/null)" || return 1
    [[ "$body" == *"\"issuer\":\"$ISSUER\""* ]]
}

# True when the discovery document answers but names another issuer (other hostname setting).
discovery_other_issuer() {
    local body
    body="$(curl -fsS --max-time 5 "$DISCOVERY_URL" 2>/dev/null)" || return 1
    [[ "$body" == *'"issuer"'* && "$body" != *"\"issuer\":\"$ISSUER\""* ]]
}

# Wipe this port's data dir if it was created from another realm file or Keycloak version:
# --import-realm skips a realm that already exists, so edits would silently not apply.
check_data_dir() {
    [[ -d "$DATA_DIR" ]] || return 0
    local want
    want="$(realm_hash)"
    [[ -f "$REALM_STAMP" && "$(cat "$REALM_STAMP")" == "$want" ]] && return 0
    if [[ "${KEYCLOAK_KEEP_DATA:-0}" == "1" ]]; then
        log "warning: $DATA_DIR was made from another realm file or Keycloak version; keeping it (KEYCLOAK_KEEP_DATA=1), the realm is NOT re-imported"
        return 0
    fi
    log "realm file or Keycloak version changed since $DATA_DIR was created: wiping it (KEYCLOAK_KEEP_DATA=1 keeps it)"
    rm -rf "$DATA_DIR"
}

launch() {
    check_data_dir
    mkdir -p "$DATA_DIR" "$KC_HOME/data/import"
    # The import dir is fixed (<home>/data/import) and shared by all ports; the files are the
    # same: the demo realm, and "elsewhere" (another issuer, for the tests' wrong-issuer case).
    local realm_file
    for realm_file in "$HERE"/realm/*-realm.json; do
        cp "$realm_file" "$KC_HOME/data/import/.realm.tmp"
        mv -f "$KC_HOME/data/import/.realm.tmp" "$KC_HOME/data/import/$(basename "$realm_file")"
    done
    local -a cmd=(
        "$KC_HOME/bin/kc.sh"
        "-Dquarkus.transaction-manager.object-store.directory=$DATA_DIR/transaction-logs"
        start-dev "${BUILD_OPTS[@]}"
        --import-realm
        --http-host=127.0.0.1 "--http-port=$PORT"
        "--http-management-port=$MGMT_PORT"
        "--hostname=$HOSTNAME_URL"
        # NON_KEYWORDS=VALUE: Keycloak's migrations use a column named VALUE (its default dev-file
        # URL has it too; an explicit --db-url must repeat it).
        "--db-url=jdbc:h2:file:$DATA_DIR/h2/keycloakdb;NON_KEYWORDS=VALUE"
        --log=console --log-console-color=false
    )
    # shellcheck disable=SC2206
    [[ -n "${KEYCLOAK_EXTRA_ARGS:-}" ]] && cmd+=(${KEYCLOAK_EXTRA_ARGS})
    log "starting keycloak $VERSION with Java $(java_major) ($(java_bin)) on port $PORT, management $MGMT_PORT (data: $DATA_DIR, log: $LOG)"
    spawn env KC_BOOTSTRAP_ADMIN_USERNAME="${KEYCLOAK_ADMIN_USER:-admin}" \
        KC_BOOTSTRAP_ADMIN_PASSWORD="${KEYCLOAK_ADMIN_PASSWORD:-admin}" \
        JAVA_OPTS="$JAVA_OPTS_KC" JAVA_HOME="$KC_JAVA_HOME" \
        "${cmd[@]}" || return 1
    realm_hash >"$REALM_STAMP"
}

# What start does when the realm does not answer and no process of ours is starting.
start_fresh() {
    if discovery_other_issuer; then
        log "realm $REALM at $BASE_URL has another issuer than $ISSUER (other KEYCLOAK_HOSTNAME?); stop it first"
        return 1
    fi
    if port_in_use "$PORT"; then
        log "port $PORT is taken by something that does not serve realm $REALM ($DISCOVERY_URL); set KEYCLOAK_PORT"
        return 1
    fi
    if port_in_use "$MGMT_PORT"; then
        log "management port $MGMT_PORT is taken; set KEYCLOAK_MANAGEMENT_PORT"
        return 1
    fi
    [[ -f "$REALM_FILE" ]] || { log "realm file $REALM_FILE is missing"; return 1; }
    pick_java
    mkdir -p "$TARGET"
    # One start at a time per distribution: the first start (or a change of build options)
    # re-augments lib/quarkus, which must not race with another instance doing the same.
    exec 9>"$LOCK_FILE"
    if ! flock -w "$START_TIMEOUT" 9; then
        log "another keycloak.sh start held $LOCK_FILE for ${START_TIMEOUT} s; giving up"
        return 1
    fi
    cmd_fetch
    local t0=$SECONDS rc=0
    launch || rc=$?
    flock -u 9
    ((rc == 0)) && log "start took $((SECONDS - t0)) s"
    return "$rc"
}

cmd_wipe() {
    if running_pid >/dev/null; then
        log "refusing to wipe $DATA_DIR while keycloak runs on port $PORT; stop it first"
        return 1
    fi
    rm -rf "$DATA_DIR"
    log "wiped $DATA_DIR"
}

main() {
    case "${1:-}" in
        fetch) cmd_fetch "${@:2}" ;;
        wipe) cmd_wipe ;;
        *) launcher_main "$@" ;;
    esac
}

main "$@"
