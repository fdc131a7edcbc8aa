"""A Bybit client as a user writes one, from Bybit's v5 docs alone: raw `websockets`, none of our
client, decoder, sync or book. One connection per category the symbols are in (`spot/BTCUSDT` on
`/v5/public/spot`; a bare symbol on linear), subscribed to the recorded book topics the config names;
a snapshot replaces the book, a delta must have `u` one past the last (else it asks for the topic
again, unsubscribe then subscribe); levels kept and reported as floats, not the venue's strings."""

from __future__ import annotations

import asyncio
import time

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from harness.observations import BookObservation, FinalBook, SyncEvent
from harness.subject import Report, SubjectConfig


class UserBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.u: int | None = None

    def apply(self, side: dict[float, float], levels: list[list[str]]) -> None:
        for price, size in levels:
            if float(size) == 0:
                side.pop(float(price), None)
            else:
                side[float(price)] = float(size)

    def top(self, depth: int | None = 20) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return sorted(self.bids.items(), reverse=True)[:depth], sorted(self.asks.items())[:depth]


class UserBybitClient:
    def __init__(self, config: SubjectConfig) -> None:
        self.config = config
        recorded = {}
        for stream in config.streams:
            category, _, topic = stream.rpartition("/")
            name = topic.rsplit(".", 1)[-1]
            recorded[f"{category}/{name}" if category else name] = topic
        self.by_category: dict[str, dict[str, str]] = {}
        """category -> topic -> symbol as the config names it."""
        for symbol in config.symbols:
            category, _, name = symbol.rpartition("/")
            topic = recorded.get(symbol, f"orderbook.50.{name}")
            self.by_category.setdefault(category or "linear", {})[topic] = symbol
        self.books = {symbol: UserBook(symbol) for symbol in config.symbols}

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._connection(c, topics, report)) for c, topics in self.by_category.items()]
        await stop.wait()
        for book in self.books.values():
            bids, asks = book.top(None)
            report(FinalBook(book.symbol, book.u or 0, book.u is not None, bids, asks))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, category: str, topics: dict[str, str], report: Report) -> None:
        url = f"{self.config.ws_url.rstrip('/')}/v5/public/{category}"
        while True:
            try:
                async with connect(url) as ws:
                    await ws.send(orjson.dumps({"op": "subscribe", "args": list(topics), "req_id": "u1"}).decode())
                    async for message in ws:
                        await self._on_frame(ws, orjson.loads(message), topics, report)
            except (OSError, WebSocketException):
                await asyncio.sleep(0.1)
            for symbol in topics.values():
                self.books[symbol].u = None
                report(SyncEvent("connection_closed", time.monotonic_ns(), category, symbol))

    async def _on_frame(self, ws: ClientConnection, frame: dict, topics: dict[str, str], report: Report) -> None:
        symbol = topics.get(frame.get("topic", ""))
        if symbol is None:
            return
        book, data = self.books[symbol], frame["data"]
        if frame["type"] == "snapshot":
            book.bids.clear()
            book.asks.clear()
        elif book.u is None or data["u"] != book.u + 1:
            if book.u is not None:
                book.u = None
                report(SyncEvent("gap_detected", time.monotonic_ns(), "u skipped", symbol))
                for op in ("unsubscribe", "subscribe"):
                    await ws.send(orjson.dumps({"op": op, "args": [frame["topic"]]}).decode())
            return
        book.apply(book.bids, data["b"])
        book.apply(book.asks, data["a"])
        book.u = data["u"]
        now = time.monotonic_ns()
        if frame["type"] == "snapshot":
            report(SyncEvent("synced", now, f"at {book.u}", symbol))
        bids, asks = book.top()
        report(BookObservation(symbol, book.u, True, bids, asks, now, now, now, now))


def create(config: SubjectConfig) -> UserBybitClient:
    return UserBybitClient(config)
