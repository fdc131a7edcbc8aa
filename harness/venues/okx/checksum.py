"""OKX's order book checksum: CRC32 over the top 25 levels, interleaved, as a signed 32-bit integer.

From OKX's v5 docs ("Checksum"): take the first 25 bids (best first) and 25 asks, write each level as
`price:size` with the venue's own strings, alternate bid and ask (`bid1:ask1:bid2:ask2:...`); when one
side has fewer levels, the other side's remaining levels follow on their own. Join with `:` and take
the CRC32 of the text, read as a signed 32-bit integer. A frame whose `checksum` is absent or 0 gives
none (OKX has sent 0 on `books` since it retired the check in favour of seqId), so 0 is never
compared. Verified against every book message of the 2022 cryptofeed capture (tests/test_okx.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from harness.book_events import Level

DEPTH = 25


def checksum_text(bids: Sequence[Level], asks: Sequence[Level], depth: int = DEPTH) -> str:
    """The string OKX takes the CRC32 of; `bids` best (highest) first, `asks` best (lowest) first."""
    top_bids = bids[:depth]
    top_asks = asks[:depth]
    parts: list[str] = []
    for i in range(max(len(top_bids), len(top_asks))):
        if i < len(top_bids):
            parts.append(f"{top_bids[i][0]}:{top_bids[i][1]}")
        if i < len(top_asks):
            parts.append(f"{top_asks[i][0]}:{top_asks[i][1]}")
    return ":".join(parts)


def book_checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """The signed CRC32 OKX would send for a book with these levels (best first on each side)."""
    crc = zlib.crc32(checksum_text(bids, asks).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def provided(checksum: object) -> int | None:
    """A frame's `checksum` field as a value to compare, None when the frame gives none (absent or 0)."""
    if type(checksum) is not int or checksum == 0:
        return None
    return checksum
