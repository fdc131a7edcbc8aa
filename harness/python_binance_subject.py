"""python-binance's `DepthCacheManager` as a subject: a popular client, judged as it ships.

Installed only by `make conformance` (the `conformance` extra); importing this module needs nothing, the
factory imports python-binance. Its hosts are class attributes (`BaseClient.API_URL`,
`BinanceSocketManager.STREAM_URL`), set here to the fake venue on loopback before any client exists;
the factory refuses to start if one is left elsewhere. One manager per symbol, `ws_interval=100` (the
100 ms stream) and its defaults otherwise (a 500-level snapshot, float levels). The manager hands out
its cache as current after every event, so each is reported as synced at the manager's last update
id (`_last_update_id`, the only place it keeps it). An exception out of `recv()`, or the error dict it
returns instead of a cache when its socket fails, ends that manager; the adapter reports a resync and
opens a new one, as a user's loop would.
docs/client_checks/python_binance_check.py is the script this grew from; docs/conformance.md holds the
results.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from harness.observations import BookObservation, FinalBook, SyncEvent
from harness.subject import Report, SubjectConfig

TOP = 20
CLOSE_TIMEOUT_S = 3.0
CLIENT = "python-binance"


def point_at_venue(config: SubjectConfig) -> None:
    """Every host python-binance's public market-data path uses, moved to the fake venue (loopback only)."""
    from binance.base_client import BaseClient
    from binance.ws.streams import BinanceSocketManager

    BaseClient.API_URL = config.rest_url + "/api"
    BaseClient.MARGIN_API_URL = config.rest_url + "/sapi"
    BinanceSocketManager.STREAM_URL = config.ws_url + "/"
    for url in (BaseClient.API_URL, BaseClient.MARGIN_API_URL, BinanceSocketManager.STREAM_URL):
        if urlsplit(url).hostname != "127.0.0.1":
            raise RuntimeError(f"python-binance would reach beyond loopback: {url}")


class DepthCacheSubject:
    """One `DepthCacheManager` per symbol on one `AsyncClient`."""

    def __init__(self, config: SubjectConfig) -> None:
        point_at_venue(config)
        self._config = config
        self._managers: dict[str, Any] = {}
        self._caches: dict[str, Any] = {}

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        from binance.async_client import AsyncClient

        client = await AsyncClient.create()
        watchers = [asyncio.create_task(self._watch(client, symbol, report)) for symbol in self._config.symbols]
        try:
            await stop.wait()
            for symbol in self._config.symbols:
                cache, manager = self._caches.get(symbol), self._managers.get(symbol)
                update_id = getattr(manager, "_last_update_id", None)
                if cache is None or update_id is None:
                    report(FinalBook(symbol, 0, False, [], []))
                else:
                    report(FinalBook(symbol, update_id, True, _levels(cache.get_bids()), _levels(cache.get_asks())))
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.wait(watchers, timeout=CLOSE_TIMEOUT_S)
            closing = asyncio.ensure_future(client.close_connection())
            if not (await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT_S))[0]:  # nothing is judged after the books
                print(f"{CLIENT} did not close within {CLOSE_TIMEOUT_S:g} s", file=sys.stderr)

    async def _watch(self, client: Any, symbol: str, report: Report) -> None:
        from binance.ws.depthcache import DepthCacheManager
        from binance.ws.streams import BinanceSocketManager

        while True:
            try:
                manager = DepthCacheManager(client, symbol, bm=BinanceSocketManager(client), ws_interval=100)
                self._managers[symbol] = manager
                async with manager:
                    while True:
                        cache = await manager.recv()
                        if isinstance(cache, dict):  # its way of saying the socket failed: {"e": "error", ...}
                            raise ConnectionError(f"recv() returned {cache}")
                        now = time.monotonic_ns()
                        self._caches[symbol] = cache
                        bids, asks = _levels(cache.get_bids()[:TOP]), _levels(cache.get_asks()[:TOP])
                        update_id = manager._last_update_id
                        report(BookObservation(symbol, update_id, True, bids, asks, now, now, now, now))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # what the manager raises is the finding; a user's loop opens a new one
                report(SyncEvent("resync", time.monotonic_ns(), f"{type(exc).__name__}: {exc}"[:200], symbol))
                await asyncio.sleep(0.05)


def _levels(side: Any) -> list[tuple[float, float]]:
    return [(float(price), float(size)) for price, size in side]


def create(config: SubjectConfig) -> DepthCacheSubject:
    return DepthCacheSubject(config)
