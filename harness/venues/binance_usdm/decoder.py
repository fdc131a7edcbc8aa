"""Binance USD-M futures frames and REST bodies -> book events.

The frames are the spot shapes plus `pu` on depth updates (required here: the sync rule needs it)
and `e`/`T`/`E` on bookTicker, so decoding is the spot decoder with `pu` made mandatory.
"""

from __future__ import annotations

from harness.venues.binance_spot.decoder import BookEvent, _loads, decode_payload, decode_snapshot

__all__ = ["decode_frame", "decode_snapshot"]


def decode_frame(frame: bytes | str) -> BookEvent | None:
    """A depth update (with `pu`), best bid/ask or trade; None for frames that carry none."""
    return decode_payload(_loads(frame), True)
