"""ccxt.pro's Binance order book (`watch_order_book`) as a subject: a popular client, judged as it ships.

Installed only by `make conformance` (the `conformance` extra); importing this module needs nothing, the
factory imports ccxt. Every URL ccxt holds for Binance is rewritten to the fake venue on loopback, and
the factory refuses to start if any is left pointing elsewhere, so a run never reaches the network.
ccxt keeps no "synced" flag: every book `watch_order_book` hands back is one it presents as current, so
each is reported as synced, and the checker judges it. An exception from `watch_order_book` (ccxt's
own sequence check, a closed socket) is reported as a resync and the loop watches again, as a user's
loop would. The levels are ccxt's floats, which the checker matches by value (docs/subject.md).
docs/client_checks/ccxt_check.py is the script this grew from; docs/conformance.md holds the results.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from harness.observations import BookObservation, FinalBook, SyncEvent
from harness.subject import Report, SubjectConfig

LIVE_REST = "https://api.binance.com"
TOP = 20
CLOSE_TIMEOUT_S = 3.0
CLIENT = "ccxt"


def loopback_urls(api: Any, rest_url: str, ws_url: str) -> Any:
    """ccxt's `urls["api"]` with every URL moved to the fake venue: REST hosts to `rest_url` (path kept),
    WebSocket hosts to `ws_url` + `/ws`. Hosts the fake does not serve (futures, options) land on it too,
    where they get 404s instead of a connection to the internet."""
    if isinstance(api, dict):
        return {key: loopback_urls(value, rest_url, ws_url) for key, value in api.items()}
    if isinstance(api, list):
        return [loopback_urls(value, rest_url, ws_url) for value in api]
    if isinstance(api, str) and api.startswith(("https://", "http://")):
        return rest_url + urlsplit(api).path
    if isinstance(api, str) and api.startswith(("wss://", "ws://")):
        return ws_url + "/ws"
    return api


def non_loopback(api: Any) -> list[str]:
    """Every URL under `api` whose host is not 127.0.0.1 (there must be none)."""
    if isinstance(api, dict):
        return [url for value in api.values() for url in non_loopback(value)]
    if isinstance(api, list):
        return [url for value in api for url in non_loopback(value)]
    if isinstance(api, str) and "://" in api and urlsplit(api).hostname != "127.0.0.1":
        return [api]
    return []


def exchange_for(config: SubjectConfig, on_applied: Callable[[dict[str, Any], Any], None]) -> Any:
    """A ccxt.pro binance instance that can reach only the fake venue (spot markets only), calling
    `on_applied(message, book)` after each depth update ccxt applies to a book."""
    import ccxt.pro as ccxtpro

    class JudgedBinance(ccxtpro.binance):
        """ccxt's own handler, observed: every update it applies, not only the books a slower
        `watch_order_book` loop happens to pick up between them."""

        def handle_order_book_message(self, client: Any, message: Any, orderbook: Any) -> Any:
            book = super().handle_order_book_message(client, message, orderbook)
            on_applied(message, book)
            return book

    exchange = JudgedBinance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"] = loopback_urls(exchange.urls["api"], config.rest_url, config.ws_url)
    left = non_loopback(exchange.urls["api"])
    if left or urlsplit(config.rest_url).hostname != "127.0.0.1":
        raise RuntimeError(f"ccxt would reach beyond loopback: {left or config.rest_url}")
    return exchange


class CcxtOrderBookSubject:
    """One `watch_order_book` loop per symbol on one ccxt.pro exchange; a book is reported each time ccxt
    applies an update to it (its handler, hooked), so no state is skipped between two watches."""

    def __init__(self, config: SubjectConfig) -> None:
        self._config = config
        self._report: Report | None = None
        self._exchange = exchange_for(config, self._applied)
        self._books: dict[str, Any] = {}

    def _applied(self, message: dict[str, Any], book: Any) -> None:
        symbol = message.get("s")
        if self._report is None or symbol not in self._config.symbols or book["nonce"] is None:
            return
        now = time.monotonic_ns()
        self._books[symbol] = book
        bids, asks = _levels(book["bids"], TOP), _levels(book["asks"], TOP)
        self._report(BookObservation(symbol, book["nonce"], True, bids, asks, now, now, now, now))

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        self._report = report
        exchange = self._exchange
        await exchange.load_markets()
        names = {symbol: exchange.markets_by_id[symbol][0]["symbol"] for symbol in self._config.symbols}
        watchers = [asyncio.create_task(self._watch(symbol, name, report)) for symbol, name in names.items()]
        try:
            await stop.wait()
            for symbol in self._config.symbols:
                book = self._books.get(symbol)
                if book is None:
                    report(FinalBook(symbol, 0, False, [], []))
                else:
                    report(FinalBook(symbol, book["nonce"] or 0, True, _levels(book["bids"]), _levels(book["asks"])))
        finally:
            self._report = None
            for task in watchers:
                task.cancel()
            await asyncio.wait(watchers, timeout=CLOSE_TIMEOUT_S)
            closing = asyncio.ensure_future(exchange.close())
            if not (await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT_S))[0]:  # nothing is judged after the books
                print(f"{CLIENT} did not close within {CLOSE_TIMEOUT_S:g} s", file=sys.stderr)

    async def _watch(self, symbol: str, name: str, report: Report) -> None:
        while True:
            try:
                self._books[symbol] = await self._exchange.watch_order_book(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # what ccxt raises is the finding; a user's loop watches again
                report(SyncEvent("resync", time.monotonic_ns(), f"{type(exc).__name__}: {exc}"[:200], symbol))
                await asyncio.sleep(0.05)


def _levels(side: Any, n: int | None = None) -> list[tuple[float, float]]:
    rows = side[:n] if n is not None else side
    return [(float(price), float(size)) for price, size, *_ in rows]


def create(config: SubjectConfig) -> CcxtOrderBookSubject:
    return CcxtOrderBookSubject(config)
