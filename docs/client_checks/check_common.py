"""Shared by the client checks: when the replay ended, and the venue's own top of book to compare against.

Run with a scratch venv's Python (the clients are no project dependency); see run_check.sh."""

import json
import time
import urllib.request


def wait_finished(log_path, timeout=120):
    """The serve log says when the replay is over; the books are compared only after that."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        with open(log_path) as log:
            if "replay finished" in log.read():
                return True
        time.sleep(0.2)
    return False


def venue_top(rest, symbol, n=5):
    """After the replay the venue answers its final book (no event left to straddle)."""
    with urllib.request.urlopen(f"{rest}/api/v3/depth?symbol={symbol}&limit={n}") as r:
        body = json.loads(r.read())
    return (
        body["lastUpdateId"],
        [[float(p), float(q)] for p, q in body["bids"][:n]],
        [[float(p), float(q)] for p, q in body["asks"][:n]],
    )
