#!/usr/bin/env bash
# Polyaxon's own local server (`haupt sandbox`, SQLite + local artifacts) serving its web UI offline:
#   tools/dashboard.sh DATA_DIR PORT
# `make dashboard` and the tests (tests/services.py) both start it through this script.
# POLYAXON_UI_IN_SANDBOX=true makes the sandbox serve the UI's own bundles (/static/dist/js/*.bundle.js);
# POLYAXON_UI_OFFLINE=true makes the page load React, Plotly, ... from the bundled static/vendors/js/
# instead of public CDNs (haupt 2.18.0: haupt/schemas/platform_config.py ui_in_sandbox / ui_offline,
# read from these variables; templates/base/index.html picks the vendor scripts by ui_offline).
# DATA_DIR holds the database, the runs' artifacts and the server's HOME: keep it outside the folders
# `make report` reads (runs/), or every tracked trial is counted twice.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_DIR PORT" >&2
    exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
haupt="$repo/.venv-dashboard/bin/haupt"
if [ ! -x "$haupt" ]; then
    echo "error: $haupt missing: run \`make dashboard-venv\`" >&2
    exit 1
fi
mkdir -p "$1"
data="$(cd "$1" && pwd)"
cd "$data"
export HOME="$data" POLYAXON_UI_IN_SANDBOX=true POLYAXON_UI_OFFLINE=true
# Where runs started by an agent work ({{ globals.run_artifacts_path }}; haupt's default is /plx-context):
# the local process agent of tools/polyaxon_sweep.sh uses the same folder.
export POLYAXON_CONTEXT_ROOT="${POLYAXON_CONTEXT_ROOT:-$data/context}"
unset POLYAXON_HOST
exec "$haupt" sandbox start --host 127.0.0.1 --port "$2" --workers 1 --path "$data/sandbox"
