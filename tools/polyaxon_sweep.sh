#!/usr/bin/env bash
# A Polyaxon server and a process agent on this machine, for `polyaxon run -u` sweeps without Kubernetes:
#   tools/polyaxon_sweep.sh up DATA_DIR PORT     start both (or reuse what runs); prints the host
#   tools/polyaxon_sweep.sh down DATA_DIR        stop the agent (its running trials end as failed), then
#                                                the server, by the PIDs in DATA_DIR
# `make sweep-polyaxon` runs `up`, then launches the sweep (python -m experiments.polyaxon.agent launch).
# The server is tools/dashboard.sh (haupt sandbox 2.18.0, SQLite, UI served offline): DATA_DIR/sandbox holds
# its runs' artifacts (the agent's artifacts store), DATA_DIR/context the runs' working folders
# (POLYAXON_CONTEXT_ROOT: haupt compiles {{ globals.run_artifacts_path }} under it; without it, under
# /plx-context). The agent (experiments/polyaxon/agent.py) keeps its state and its trials' HOME in
# DATA_DIR/agent, never the user's HOME: a trial must not find the CLI's cached run there.
# POLYAXON_MAX_CONCURRENCY (haupt 2.18.0 default 50) caps every run in a running state, a running matrix
# included (haupt/db/managers/agents.py get_queued_runs, queues.py get_num_to_start): at 1 or 2 a matrix
# waits forever for room it takes itself, so a lower value is refused here.
set -euo pipefail
usage() { echo "usage: $0 up DATA_DIR PORT | down DATA_DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"
if [ "$cmd" = up ] && [ -n "${POLYAXON_MAX_CONCURRENCY:-}" ] && [ "$POLYAXON_MAX_CONCURRENCY" -lt 3 ] 2>/dev/null; then
    echo "error: POLYAXON_MAX_CONCURRENCY=$POLYAXON_MAX_CONCURRENCY: the running matrix counts too; use at least the matrix's concurrency + 1 (3 or more)" >&2
    exit 1
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$2"
data="$(cd "$2" && pwd)"
python="$repo/.venv/bin/python"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
healthy() { "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1/healthz" \
    >/dev/null 2>&1; }

stop_pid() {  # the process group started by this script (setsid): TERM, then KILL after $2 seconds
    local file="$1" grace="$2" pid
    alive "$file" || { rm -f "$file"; return 0; }
    pid="$(cat "$file")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$((grace * 10))"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$file"
}

case "$cmd" in
up)
    [ $# -eq 3 ] || usage
    port="$3" host="http://127.0.0.1:$3"
    [ -x "$python" ] || { echo "error: $python missing: run \`make venv\`" >&2; exit 1; }
    export POLYAXON_CONTEXT_ROOT="$data/context"
    if healthy "$host"; then
        if alive "$data/server.pid"; then
            echo "server: reusing $host (pid $(cat "$data/server.pid"))"
        else
            echo "server: reusing $host (not started here: it must be \`make dashboard\` on $data)"
        fi
    else
        echo "server: starting $host (log $data/server.log)"
        setsid bash "$repo/tools/dashboard.sh" "$data" "$port" >"$data/server.log" 2>&1 < /dev/null &
        echo $! >"$data/server.pid"
        for _ in $(seq 360); do
            healthy "$host" && break
            alive "$data/server.pid" || { echo "error: $data/server.log: server exited" >&2; tail -5 "$data/server.log" >&2; exit 1; }
            sleep 0.5
        done
        healthy "$host" || { echo "error: $host: server not up after 180 s" >&2; exit 1; }
    fi
    if alive "$data/agent.pid"; then
        echo "agent: reusing pid $(cat "$data/agent.pid") (log $data/agent.log)"
    else
        echo "agent: starting (log $data/agent.log)"
        mkdir -p "$data/agent"
        HOME="$data/agent" POLYAXON_HOST="$host" setsid "$python" -m experiments.polyaxon.agent agent \
            --store "$data/sandbox" --state "$data/agent" >>"$data/agent.log" 2>&1 < /dev/null &
        echo $! >"$data/agent.pid"
        sleep 2
        alive "$data/agent.pid" || { echo "error: $data/agent.log: agent exited" >&2; tail -5 "$data/agent.log" >&2; exit 1; }
    fi
    echo "cluster-only fields (image, nodeSelector, tolerations, resources) are ignored on this machine"
    echo "dashboard: $host"
    ;;
down)
    stop_pid "$data/agent.pid" 40
    stop_pid "$data/server.pid" 15
    echo "stopped the agent and the server of $data"
    ;;
*) usage ;;
esac
