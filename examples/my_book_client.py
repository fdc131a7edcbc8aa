"""A small Binance spot order-book client, written the way a team writes its own.

It knows nothing of the harness: it keeps prices and sizes as floats, runs its own reconnect loop on the
`websockets` library, fetches REST snapshots with the standard library, and follows Binance's "how to
manage a local order book correctly": buffer the stream, fetch a snapshot, drop what the snapshot
already holds, start at the update that straddles it, then require each update to start right after the
last one. Anything it cannot account for (a gap, a frame it cannot read, a silent socket, a refused
snapshot) makes it start over from a fresh snapshot. It tells its owner what happens through two
callbacks: `on_book(symbol, book, recv_ns)` after each applied update and `on_lost(symbol, reason)`
when a book stops being trustworthy ("" meaning every symbol).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
import urllib.request
from collections.abc import Callable

import websockets

SNAPSHOT_LEVELS = 1000
SILENCE_S = 1.5  # no frame for this long: the connection is dead even if the socket says otherwise
SNAPSHOT_TIMEOUT_S = 5.0


class OrderBook:
    """Price -> size per side, as floats."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.last_update_id = 0

    def load(self, snapshot: dict) -> None:
        self.bids = {float(p): float(q) for p, q in snapshot["bids"]}
        self.asks = {float(p): float(q) for p, q in snapshot["asks"]}
        self.last_update_id = snapshot["lastUpdateId"]

    def apply(self, update: Update) -> None:
        for side, levels in ((self.bids, update.bids), (self.asks, update.asks)):
            for price, size in levels:
                if size == 0.0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.last_update_id = update.last

    def top(self, depth: int | None = 20) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        if depth is None:
            return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())
        return heapq.nlargest(depth, self.bids.items()), heapq.nsmallest(depth, self.asks.items())


class Update:
    """One depth update, checked field by field: a frame that is not exactly this shape is unreadable."""

    __slots__ = ("asks", "bids", "first", "last", "symbol")

    def __init__(self, frame: str | bytes) -> None:
        data = json.loads(frame)["data"]
        self.symbol, self.first, self.last = data["s"], data["U"], data["u"]
        if not (isinstance(self.symbol, str) and type(self.first) is int and type(self.last) is int):
            raise ValueError("update ids are not integers")
        self.bids = _levels(data["b"])
        self.asks = _levels(data["a"])


def _levels(raw: object) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise ValueError("levels are not a list")
    levels = []
    for level in raw:
        if not (isinstance(level, list) and len(level) == 2 and all(isinstance(v, str) for v in level)):
            raise ValueError(f"level {level!r} is not [price, size]")
        levels.append((float(level[0]), float(level[1])))
    return levels


class SymbolBook:
    """One symbol's book and where its sync stands."""

    def __init__(self) -> None:
        self.book = OrderBook()
        self.loaded = False  # a snapshot is in the book
        self.synced = False  # an update has been joined to it
        self.buffer: list[tuple[Update, int]] = []
        self.fetch: asyncio.Task | None = None


class BookClient:
    def __init__(
        self,
        ws_url: str,
        rest_url: str,
        symbols: tuple[str, ...],
        on_book: Callable[[str, OrderBook, int], None],
        on_lost: Callable[[str, str], None],
    ) -> None:
        self.ws_url, self.rest_url, self.symbols = ws_url, rest_url, symbols
        self.on_book, self.on_lost = on_book, on_lost
        self.books = {symbol: SymbolBook() for symbol in symbols}

    async def run(self, stop: asyncio.Event) -> None:
        """Connects and reconnects (backing off from 50 ms to 1 s) until `stop` is set."""
        backoff = 0.05
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = 0.05
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                if stop.is_set():
                    break
                self._forget_all(f"connection lost: {exc!r}")
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except TimeoutError:
                backoff = min(backoff * 2, 1.0)

    async def _session(self, stop: asyncio.Event) -> None:
        streams = "/".join(f"{symbol.lower()}@depth@100ms" for symbol in self.symbols)
        url = f"{self.ws_url}/stream?streams={streams}"
        async with websockets.connect(url, max_size=None, open_timeout=5, close_timeout=1) as ws:
            for symbol in self.symbols:
                self._start_over(symbol)
            heard = time.monotonic()
            while not stop.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    if time.monotonic() - heard > SILENCE_S:
                        raise TimeoutError(f"silent for {SILENCE_S} s") from None
                    continue
                heard = time.monotonic()
                self._on_frame(frame, time.monotonic_ns())
            for state in self.books.values():
                if state.fetch is not None:
                    state.fetch.cancel()

    def _on_frame(self, frame: str | bytes, recv_ns: int) -> None:
        try:
            update = Update(frame)
        except (ValueError, KeyError, TypeError, IndexError):
            self._forget_all("unreadable frame")  # whose update it was is unknown: every book starts over
            for symbol in self.symbols:
                self._start_over(symbol)
            return
        state = self.books.get(update.symbol)
        if state is None:
            return
        if not state.loaded:
            state.buffer.append((update, recv_ns))
            return
        self._join(update.symbol, state, update, recv_ns)

    def _join(self, symbol: str, state: SymbolBook, update: Update, recv_ns: int) -> None:
        book = state.book
        if update.last <= book.last_update_id:
            return  # already in the book (a duplicate, or older than the snapshot)
        if not self.continues(state, update):
            self.on_lost(symbol, f"update {update.first} does not follow {book.last_update_id}")
            self._start_over(symbol)
            return
        book.apply(update)
        state.synced = True
        self.on_book(symbol, book, recv_ns)

    def continues(self, state: SymbolBook, update: Update) -> bool:
        """Binance's rule: the first update straddles the snapshot, every later one starts right after."""
        expected = state.book.last_update_id + 1
        return update.first <= expected if not state.synced else update.first == expected

    def _start_over(self, symbol: str) -> None:
        state = self.books[symbol]
        if state.fetch is not None:
            state.fetch.cancel()
        state.loaded = state.synced = False
        state.buffer.clear()
        state.fetch = asyncio.get_running_loop().create_task(self._load_snapshot(symbol, state))

    async def _load_snapshot(self, symbol: str, state: SymbolBook) -> None:
        url = f"{self.rest_url}/api/v3/depth?symbol={symbol}&limit={SNAPSHOT_LEVELS}"
        delay = 0.1
        while True:
            try:
                snapshot = await asyncio.wait_for(asyncio.to_thread(_get_json, url), SNAPSHOT_TIMEOUT_S)
                break
            except (OSError, TimeoutError, ValueError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        state.book.load(snapshot)
        state.loaded = True
        buffered, state.buffer = state.buffer, []
        for update, recv_ns in buffered:
            if not state.loaded:
                break  # a buffered update did not follow: a new snapshot is on its way
            self._join(symbol, state, update, recv_ns)

    def _forget_all(self, reason: str) -> None:
        self.on_lost("", reason)
        for state in self.books.values():
            if state.fetch is not None:
                state.fetch.cancel()
            state.loaded = state.synced = False
            state.buffer.clear()


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=SNAPSHOT_TIMEOUT_S) as response:
        return json.loads(response.read())
