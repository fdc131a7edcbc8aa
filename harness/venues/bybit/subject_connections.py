"""Our subject's connections on Bybit, from what the recording holds (`SubjectConfig.streams`).

Bybit serves spot and linear on paths of their own under the same topic names, so a recording holding
both (keys `spot/orderbook.200.BTCUSDT`, books `spot/BTCUSDT`) needs one connection per category, each
subscribing to its books' recorded topics at the recorded depth, and naming the books it decodes the
way the recording does. A recording of one category (bare keys) gets one connection, to linear (what
our recorder and synth record). A symbol without a recorded book stream (nobody passed the streams)
gets `orderbook.1000`. Each book comes with its trades (`publicTrade.<symbol>`).

A book whose chain broke is asked for again on the same connection, unsubscribe then subscribe (Bybit
sends a subscriber the book first), so the connection and its other books stay up; reconnecting for
every gap cost every book of the connection and left the venue with no client for a while each time
(the library's `chaos` stall once fell in such a gap on Bybit, met by nobody).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from harness.subject import SubjectConfig
from harness.venues.bybit.control import BybitSubscribe, request_frame
from harness.venues.bybit.decoder import decode_frame
from harness.venues.bybit.sequencing import BybitSequencing
from harness.venues.bybit.topics import (
    SUBJECT_CATEGORY,
    SUBJECT_DEPTH,
    Category,
    book_topic,
    parse_book_topic,
    qualify,
    split_stream,
    trade_topic,
    ws_url,
)
from harness.venues.dialect import SubjectParts

RESUBSCRIBE_REQ_ID = "harness-resub"
"""The `req_id` of the in-place resubscribe, apart from the subscribe step's (`harness-sub-N`)."""


def connections(config: SubjectConfig) -> list[tuple[SubjectConfig, SubjectParts]]:
    """One (config, parts) per category the config's books are in, in the order their symbols come."""
    recorded: dict[str, tuple[int, str]] = {}
    """Symbol as the recording names it -> the deepest book topic recorded for it (depth, topic)."""
    for stream in config.streams:
        category, topic = split_stream(stream)
        parsed = parse_book_topic(topic)
        if parsed is None:
            continue
        symbol = parsed[1] if category is None else qualify(category, parsed[1])
        if parsed[0] > recorded.get(symbol, (0, ""))[0]:
            recorded[symbol] = (parsed[0], topic)
    groups: dict[Category | None, list[tuple[str, str]]] = {}
    for symbol in config.symbols:
        category, name = split_stream(symbol)
        topic = recorded.get(symbol, (0, book_topic(SUBJECT_DEPTH, name)))[1]
        groups.setdefault(category, []).append((symbol, topic))
    pieces = []
    for category, books in groups.items():
        streams = tuple(topic if category is None else qualify(category, topic) for _, topic in books)
        share = replace(config, symbols=tuple(symbol for symbol, _ in books), streams=streams)
        pieces.append((share, _parts(category, dict(books))))
    return pieces


def _parts(category: Category | None, books: dict[str, str]) -> SubjectParts:
    """The parts of one connection; `books` maps each symbol (as named) to its book topic."""
    topics: list[str] = []
    for topic in books.values():
        parsed = parse_book_topic(topic)
        assert parsed is not None, "only book topics are kept"
        topics += [topic, trade_topic(parsed[1])]
    step = BybitSubscribe(tuple(topics))

    def resubscribe(symbol: str) -> list[str]:
        topic = (books[symbol],)
        return [request_frame(op, topic, RESUBSCRIBE_REQ_ID).decode() for op in ("unsubscribe", "subscribe")]

    return SubjectParts(
        decode_frame=decode_frame if category is None else partial(decode_frame, market=f"{category}/"),
        sequencing=BybitSequencing,
        ws_url=lambda ws_base, symbols: ws_url(ws_base, category or SUBJECT_CATEGORY),
        subscribe=lambda symbols: step,
        resubscribe=resubscribe,
    )
