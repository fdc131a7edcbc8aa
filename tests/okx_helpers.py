"""OKX frames for tests: the real 2022 capture's book messages, and hand-made ones by their ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest

REAL_OKX = Path(__file__).parents[2] / "shared" / "data" / "real" / "okx_v5_books_2022.cryptofeed.ws.1.0"


def real_okx_received() -> Iterator[bytes]:
    """The capture's received payloads, in order; skips the test where the capture is absent."""
    if not REAL_OKX.exists():
        pytest.skip(f"{REAL_OKX} not present")
    with REAL_OKX.open("rb") as lines:
        for line in lines:
            if not line.startswith(b"wss://"):
                yield line.rstrip(b"\n").partition(b": ")[2]


def books(
    seq: int | None,
    prev: int | None,
    *,
    action: str = "update",
    bids: Sequence[Sequence[str]] = (),
    asks: Sequence[Sequence[str]] = (),
    checksum: int | None = None,
    inst: str = "BTC-USDT",
) -> bytes:
    """A `books` message with exactly the fields given (None leaves a field out)."""
    item: dict[str, object] = {"asks": [[*a, "0", "1"] for a in asks], "bids": [[*b, "0", "1"] for b in bids]}
    item["ts"] = "1700000000000"
    for key, value in (("checksum", checksum), ("prevSeqId", prev), ("seqId", seq)):
        if value is not None:
            item[key] = value
    return orjson.dumps({"arg": {"channel": "books", "instId": inst}, "action": action, "data": [item]})
