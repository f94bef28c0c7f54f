# shellcheck shell=bash disable=SC2034  # URL, SERVER_PID, STOP_STATUS: read by the caller
# Starting and stopping a serve under test or benchmark: sourced by
# tests/helpers.bash and bench/serve.sh; `serve` is the one on PATH.

# Start serve with the given options; sets SERVER_PID and URL.  The server
# prints its port on stderr once the generators are loaded.
start_server() {
    local log=$1
    shift
    timeout -k 5 600 serve --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 3>&- &
    SERVER_PID=$!
    local port=
    for _ in $(seq 300); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log")
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        cat "$log" >&2
        return 1
    fi
    URL="http://127.0.0.1:$port"
}

# Stop a server with a signal and wait (bounded) for it to exit; its status
# is in STOP_STATUS (137: it had to be killed).  The signal goes to serve
# itself, the child of `timeout`, so that STOP_STATUS is serve's own.
stop_server() {
    local pid=$1 sig=${2:-TERM}
    [ -n "$pid" ] || return 0
    kill -"$sig" "$(pgrep -P "$pid" || echo "$pid")" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    STOP_STATUS=0
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
}
