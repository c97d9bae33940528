# shellcheck shell=bash
# What the sandbox launchers (hapi/sandbox.sh, keycloak/keycloak.sh) share: a server started
# detached with a pid file, readiness by polling, stop by SIGTERM then SIGKILL, and status.
# Sourced, not run. The launchers run under `set -euo pipefail`: the functions that can fail
# (running_pid, port_in_use, wait_ready, spawn) say so by their exit code, for `if` and `||`.
#
# Before calling anything here, the launcher sets:
#   LOG_TAG                      log prefix, e.g. hapi-sandbox
#   PID_FILE, LOG                pid file and server log
#   START_TIMEOUT, STOP_TIMEOUT  seconds to wait for readiness, and after SIGTERM
#   READY_PROBE                  name of a function that succeeds when the server answers as it should
#   READY_URL                    what READY_PROBE asks (for messages)
#   SERVED                       what a ready server offers, e.g. its base URL (for messages)
#   FOREIGN                      "<something> answers at <url>": a server this script did not start
#   STATUS_NOTE                  appended to `status` of a ready server (may be empty)
#   PROCESS_GROUP                1 when the pid runs the server as its child: stop waits for and
#                                kills the whole process group, status sums its RSS; else 0
# and defines start_fresh: what `start` does when nothing answers and no process of ours is
# still starting (its own checks, build or fetch, then `spawn CMD...`).

log() { echo "[$LOG_TAG] $*" >&2; }

# The pid recorded in the pid file, if that process is still alive.
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_ready [PID]: poll READY_PROBE until ready, the process dies, or the timeout.
wait_ready() {
    local pid="${1:-}" t0=$SECONDS
    log "waiting for $READY_URL (timeout ${START_TIMEOUT} s) "
    while true; do
        if "$READY_PROBE"; then
            echo >&2
            log "ready after $((SECONDS - t0)) s: $SERVED"
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

# spawn CMD...: run CMD in the background with its output in LOG, then wait until it is ready.
# A server that is not ready in time but still alive is stopped again, so no half-started
# server keeps the port.
spawn() {
    # Checked here rather than left to set -e, which is off inside a function called with `||`.
    mkdir -p "$(dirname "$LOG")" "$(dirname "$PID_FILE")" && : >"$LOG" || return 1
    rm -f "$PID_FILE"
    # setsid: own session and process group, so the server survives the calling shell and stop
    # can kill the whole group. The inner shell writes its own pid and then execs CMD, so the pid
    # file names CMD's process itself.
    # shellcheck disable=SC2016  # $$ and $0 belong to the inner shell
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" "$@" \
        </dev/null >>"$LOG" 2>&1 &
    local pid tries
    for ((tries = 0; tries < 50; tries++)); do
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
}

# True while the server of PID (with PROCESS_GROUP, any process of its group) is alive.
server_alive() {
    kill -0 "$1" 2>/dev/null && return 0
    [[ "$PROCESS_GROUP" == 1 ]] && pgrep -g "$1" >/dev/null 2>&1
}

cmd_start() {
    local pid
    if "$READY_PROBE"; then
        if pid="$(running_pid)"; then
            log "already running (pid $pid): $SERVED"
        else
            log "$FOREIGN (not started by this script); using it"
        fi
        return 0
    fi
    if pid="$(running_pid)"; then
        log "process $pid from $PID_FILE is still starting"
        wait_ready "$pid"
        return $?
    fi
    start_fresh
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        if "$READY_PROBE"; then
            log "not started by this script, but $FOREIGN; leaving it alone"
        else
            log "not running"
        fi
        return 0
    fi
    log "stopping pid $pid (SIGTERM, up to ${STOP_TIMEOUT} s)"
    kill -TERM "$pid" 2>/dev/null || true
    local t0=$SECONDS
    while server_alive "$pid"; do
        if ((SECONDS - t0 >= STOP_TIMEOUT)); then
            if [[ "$PROCESS_GROUP" == 1 ]]; then
                log "still alive after ${STOP_TIMEOUT} s, sending SIGKILL to process group $pid"
                kill -KILL -- "-$pid" 2>/dev/null || true
            else
                log "still alive after ${STOP_TIMEOUT} s, sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            break
        fi
        sleep 0.5
    done
    rm -f "$PID_FILE"
    log "stopped"
}

# Exit 3 when not running (as LSB init scripts do), so callers can tell it from a failure.
cmd_status() {
    local pid rss select=-p
    [[ "$PROCESS_GROUP" == 1 ]] && select=-g
    if pid="$(running_pid)"; then
        rss="$(ps -o rss= "$select" "$pid" 2>/dev/null | awk '{s += $1} END {print s}' || true)"
        if "$READY_PROBE"; then
            log "running: pid $pid, RSS ${rss:-?} KiB, ready: $SERVED${STATUS_NOTE:+ $STATUS_NOTE}"
        else
            log "running: pid $pid, RSS ${rss:-?} KiB, not answering yet at $READY_URL"
        fi
        return 0
    fi
    if "$READY_PROBE"; then
        log "$FOREIGN (no pid file: not started by this script)"
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

# The launcher's header comment, from line 2 to `set -euo pipefail`.
usage() {
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
}

# The commands every launcher has; the launcher's main handles its own ones first.
launcher_main() {
    local sub="${1:-}"
    case "$sub" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        restart)  # not `&&`: set -e must still stop a failing start (cmd_stop always succeeds)
            cmd_stop
            cmd_start
            ;;
        status) cmd_status ;;
        wait) cmd_wait ;;
        -h | --help | help | "") usage ;;
        *)
            log "unknown command: $sub"
            usage
            exit 2
            ;;
    esac
}
