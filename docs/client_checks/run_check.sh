#!/bin/bash
# Run one off-the-shelf client against `harness serve` for one replay and print what it did (JSON).
# usage (from the repo root, clients in a scratch venv outside the repo, never a project dependency):
#   python3 -m venv /tmp/clientvenv && /tmp/clientvenv/bin/pip install python-binance ccxt binance-connector
#   docs/client_checks/run_check.sh RECORDING SYMBOLS SCRIPT [ARGS...]
#   e.g. docs/client_checks/run_check.sh fixtures/binance_spot_multi_synth BTCUSDT,ETHUSDT,SOLUSDT,SHIBUSDT \
#        python_binance_check.py dcm
set -u
recording=$1; symbols=$2; script=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
client_python=${CLIENT_PYTHON:-/tmp/clientvenv/bin/python}
log=$(mktemp /tmp/serve.XXXXXX.log)
.venv/bin/harness serve --recording "$recording" > "$log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -q '^rest:' "$log" && break; sleep 0.1; done
ws=$(awk '/^websocket:/{print $2}' "$log"); rest=$(awk '/^rest:/{print $2}' "$log")
(cd "$here" && timeout 150 "$client_python" "$script" "$@" "$rest" "$ws" "$symbols" "$log")
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null
echo "serve log ($log): $(grep -c 'connection .* from' "$log") websocket connections, $(grep -c 'subscribed' "$log") subscriptions"
