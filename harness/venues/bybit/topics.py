"""Bybit v5 public topics, categories and URLs: the names a frame, a subscription and a recording share.

Spot and linear are separate endpoints (`/v5/public/spot`, `/v5/public/linear`) that publish topics
with the same names (`orderbook.200.BTCUSDT` exists on both, with different books). A recording that
holds one category keys its frames by the bare topic; one that holds both (the cryptofeed capture
does) keys them `<category>/<topic>`, so the two BTCUSDT books never share a chain. Everything that
reads the `stream` column goes through `split_stream`, which takes either form.
"""

from __future__ import annotations

from typing import Literal

import orjson

Category = Literal["spot", "linear"]
CATEGORIES: tuple[Category, ...] = ("spot", "linear")

LIVE_WS_URL = "wss://stream.bybit.com"
LIVE_REST_URL = "https://api.bybit.com"
PUBLIC_PATH = "/v5/public/"

BOOK_DEPTHS: dict[Category, tuple[int, ...]] = {"spot": (1, 50, 200, 1000), "linear": (1, 50, 200, 1000)}
"""The depths Bybit serves `orderbook.{depth}.{symbol}` at, per category."""

PUSH_INTERVAL_MS: dict[Category, dict[int, int]] = {
    "spot": {1: 10, 50: 20, 200: 200, 1000: 300},
    "linear": {1: 10, 50: 20, 200: 100, 1000: 300},
}
"""How often Bybit publishes each depth (its docs); the synth batches changes on these windows."""

SUBJECT_CATEGORY: Category = "linear"
SUBJECT_DEPTH = 1000
"""What our components (default subject, recorder, synth) use on Bybit: linear, the deepest book
(it holds the whole synthetic book, so nothing falls out of view)."""

BOOK_PREFIX = "orderbook."
TRADE_PREFIX = "publicTrade."


def ws_path(category: Category) -> str:
    return PUBLIC_PATH + category


def ws_url(base: str, category: Category) -> str:
    """`wss://stream.bybit.com` + category -> the public endpoint a client connects to."""
    return base.rstrip("/") + ws_path(category)


def category_of_url(url: str) -> Category | None:
    """The category a public WebSocket URL or path serves, None for anything else."""
    path = url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else ""
    path = path.split("?", 1)[0].rstrip("/")
    for category in CATEGORIES:
        if path == ws_path(category):
            return category
    return None


def book_topic(depth: int, symbol: str) -> str:
    return f"{BOOK_PREFIX}{depth}.{symbol}"


def trade_topic(symbol: str) -> str:
    return f"{TRADE_PREFIX}{symbol}"


def parse_book_topic(topic: str) -> tuple[int, str] | None:
    """`orderbook.200.BTCUSDT` -> (200, "BTCUSDT"); None when `topic` is not an order book topic."""
    if not topic.startswith(BOOK_PREFIX):
        return None
    depth, _, symbol = topic[len(BOOK_PREFIX) :].partition(".")
    if not depth.isdigit() or not symbol:
        return None
    return int(depth), symbol


def is_known_book_topic(category: Category, topic: str) -> bool:
    """Whether Bybit serves this order book topic on `category` (a depth it publishes)."""
    parsed = parse_book_topic(topic)
    return parsed is not None and parsed[0] in BOOK_DEPTHS[category]


def qualify(category: Category, topic: str) -> str:
    return f"{category}/{topic}"


def split_stream(stream: str) -> tuple[Category | None, str]:
    """A recorded stream key -> (category or None for a bare topic, topic)."""
    head, sep, tail = stream.partition("/")
    if sep:
        for category in CATEGORIES:
            if head == category:
                return category, tail
    return None, stream


def symbol_of_topic(topic: str) -> str | None:
    """The symbol a public topic names: its last dotted part (`kline.1.BTCUSDT` -> BTCUSDT)."""
    _, sep, symbol = topic.rpartition(".")
    return symbol if sep and symbol else None


def topic_of(payload: bytes | str) -> str | None:
    """The `topic` of a pushed frame; None for control replies (acks, pongs, errors) and non-JSON."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    topic = message.get("topic")
    return topic if isinstance(topic, str) and topic else None
