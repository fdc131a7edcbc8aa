"""The real Binance spot capture beside the checkout (../shared/data/real), read as the benches need it.

Never copied into the project: a bench that does not find it says so and skips.
"""

from __future__ import annotations

import gzip
from pathlib import Path

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SPOT_CAPTURE = REAL / "binance_spot_btcusdt_20240808.hftbacktest.gz"


def capture_lines(path: Path = SPOT_CAPTURE) -> list[bytes]:
    """Each line's payload (the hftbacktest line's timestamp dropped): frames and the REST snapshot, in order."""
    with gzip.open(path, "rb") as fh:
        return [line.rstrip(b"\n").split(b" ", 1)[1] for line in fh]
