"""Where OKX's public order books live and how their streams are named.

A frame names its stream in `arg` (`{"channel": "books", "instId": "BTC-USDT"}`); the harness keys a
stream as `books:BTC-USDT`, which is what the recording's `stream` column holds. Instrument ids are
OKX's (`BTC-USDT`, `BTC-USDT-SWAP`, `BTC-USD-220527`); the synth's Binance-style symbols map to the
spot id by their base and quote assets.
"""

from __future__ import annotations

LIVE_WS_URL = "wss://ws.okx.com:8443"
"""The host, as the registry keeps every venue's; the public books and trades live under `WS_PATH`."""
LIVE_REST_URL = "https://www.okx.com"
WS_PATH = "/ws/v5/public"
PUBLIC_WS_URL = LIVE_WS_URL + WS_PATH

BOOKS = "books"
"""400 levels: a snapshot, then incremental updates linked by seqId/prevSeqId, with a checksum."""
BOOKS5 = "books5"
"""The top 5 levels, every message a full snapshot of them (no action, no prevSeqId, no checksum)."""
BBO_TBT = "bbo-tbt"
"""The best bid and ask, tick by tick, every message a full snapshot of them."""

TRADES = "trades"
"""Public trades, one message per trade (not a book channel)."""

BOOK_CHANNELS = frozenset({BOOKS, BOOKS5, BBO_TBT})
SNAPSHOT_ONLY_CHANNELS = frozenset({BOOKS5, BBO_TBT})
"""Channels whose every message is the whole (top of the) book: nothing to chain, nothing to miss."""

CHECKSUM_DEPTH = 25
"""The checksum covers this many levels a side."""


def stream_key(channel: str, inst_id: str) -> str:
    return f"{channel}:{inst_id}"


def split_stream(stream: str) -> tuple[str, str] | None:
    """(channel, instId) of a stream key, None when it is not one."""
    channel, sep, inst_id = stream.partition(":")
    if not sep or not channel or not inst_id:
        return None
    return channel, inst_id


def inst_id_of(base_asset: str, quote_asset: str) -> str:
    """OKX's spot instrument id: `BTC-USDT` for BTC quoted in USDT."""
    return f"{base_asset.upper()}-{quote_asset.upper()}"
