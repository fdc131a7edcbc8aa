"""binance-connector has no depth cache: show what it hands its user (snapshot ids against the stream's events)."""

import json
import sys
import threading
import time

from binance.spot import Spot
from binance.websocket.spot.websocket_stream import SpotWebsocketStreamClient
from check_common import wait_finished

rest, ws, symbols, log_path = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
events = {s: [] for s in symbols}


def on_message(_, raw):
    m = json.loads(raw)
    d = m.get("data", m)
    if isinstance(d, dict) and d.get("e") == "depthUpdate":
        events[d["s"]].append((d["U"], d["u"]))


wsc = SpotWebsocketStreamClient(stream_url=ws, on_message=on_message, is_combined=True)
for s in symbols:
    wsc.diff_book_depth(symbol=s.lower(), speed=100)
spot = Spot(base_url=rest)
snaps = {s: [] for s in symbols}
done = threading.Event()


def poll():
    while not done.is_set():
        for s in symbols:
            snaps[s].append(spot.depth(s, limit=100)["lastUpdateId"])
        time.sleep(5)


threading.Thread(target=poll, daemon=True).start()
wait_finished(log_path)
done.set()
time.sleep(1)
out = {}
for s in symbols:
    inside = boundary = other = 0
    for L in snaps[s]:
        if any(U <= L < u for U, u in events[s]):
            inside += 1
        elif any(u == L for U, u in events[s]):
            boundary += 1
        else:
            other += 1
    out[s] = {
        "snapshots": len(snaps[s]),
        "inside_an_event": inside,
        "at_a_boundary": boundary,
        "neither_seen": other,
        "events": len(events[s]),
    }
print(json.dumps({"client": "binance-connector", "symbols": out}, indent=1))
wsc.stop()
