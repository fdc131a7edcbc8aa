"""python-binance DepthCacheManager (`dcm`) or ThreadedDepthCacheManager (`threaded`) against `harness serve`.

Counts its REST depth requests and re-inits, flags every event it applies although the event ends at or
before the snapshot it just fetched (u <= lastUpdateId), and compares its top 5 with the venue's at the end.
"""

import asyncio
import json
import sys
import time

from binance.async_client import AsyncClient
from binance.base_client import BaseClient
from binance.ws import depthcache as dcmod
from binance.ws.streams import BinanceSocketManager
from check_common import venue_top, wait_finished

mode, rest, ws, symbols, log_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), sys.argv[5]
BaseClient.API_URL = rest + "/api"
BaseClient.MARGIN_API_URL = rest + "/sapi"
BinanceSocketManager.STREAM_URL = ws + "/"

stats = {
    s: {"rest_depth": [], "init_cache": 0, "applied_older_than_snapshot": [], "reinit_on_first_event": 0, "applied": 0}
    for s in symbols
}
_orig_gob = AsyncClient.get_order_book


async def counted_gob(self, **params):
    res = await _orig_gob(self, **params)
    stats[params["symbol"]]["rest_depth"].append(res["lastUpdateId"])
    stats[params["symbol"]]["last_snapshot"] = (
        {float(p): float(q) for p, q in res["bids"]},
        {float(p): float(q) for p, q in res["asks"]},
    )
    return res


AsyncClient.get_order_book = counted_gob

_orig_init = dcmod.DepthCacheManager._init_cache


async def counted_init(self):
    stats[self._symbol]["init_cache"] += 1
    await _orig_init(self)


dcmod.DepthCacheManager._init_cache = counted_init

_orig_apply = dcmod.DepthCacheManager._apply_orders


def watched_apply(self, msg):
    st = stats[self._symbol]
    if "u" in msg:
        st["applied"] += 1
        snap = st["rest_depth"][-1] if st["rest_depth"] else None
        if snap is not None and msg["u"] <= snap:
            sb, sa = st["last_snapshot"]
            stale = sum(1 for p, q in msg["b"] if float(p) >= min(sb) and sb.get(float(p), 0.0) != float(q)) + sum(
                1 for p, q in msg["a"] if float(p) <= max(sa) and sa.get(float(p), 0.0) != float(q)
            )
            st["applied_older_than_snapshot"].append(
                {
                    "U": msg["U"],
                    "u": msg["u"],
                    "snapshot": snap,
                    "levels_set_unlike_snapshot": stale,
                    "levels_in_event": len(msg["b"]) + len(msg["a"]),
                }
            )
    _orig_apply(self, msg)


dcmod.DepthCacheManager._apply_orders = watched_apply

books = {}


def report():
    out = {}
    for s in symbols:
        dc = books.get(s)
        vid, vb, va = venue_top(rest, s)
        cb = [list(x) for x in dc.get_bids()[:5]] if dc else None
        ca = [list(x) for x in dc.get_asks()[:5]] if dc else None
        st = stats[s]
        out[s] = {
            "rest_depth_requests": len(st["rest_depth"]),
            "init_cache_calls": st["init_cache"],
            "snapshot_ids": st["rest_depth"][:6],
            "events_applied": st["applied"],
            "events_applied_with_u_le_snapshot_id": len(st["applied_older_than_snapshot"]),
            "examples_older": st["applied_older_than_snapshot"][:3],
            "top5_equal": cb == vb and ca == va,
            "client_top": [cb[:1] if cb else None, ca[:1] if ca else None],
            "venue_top": [vb[:1], va[:1]],
            "venue_lastUpdateId": vid,
        }
    print(json.dumps({"client": "python-binance " + mode, "symbols": out}, indent=1))


if mode == "dcm":

    async def one(client, s):
        bm = BinanceSocketManager(client)
        async with dcmod.DepthCacheManager(client, s, bm=bm, ws_interval=100) as dcm:
            while True:
                dc = await dcm.recv()
                books[s] = dc

    async def main():
        client = await AsyncClient.create()
        tasks = [asyncio.create_task(one(client, s)) for s in symbols]
        await asyncio.get_running_loop().run_in_executor(None, wait_finished, log_path)
        await asyncio.sleep(2)
        report()
        for t in tasks:
            t.cancel()
        await client.close_connection()

    asyncio.run(main())
else:
    from binance import ThreadedDepthCacheManager

    t = ThreadedDepthCacheManager()
    t.start()
    for s in symbols:
        t.start_depth_cache(lambda dc, s=s: books.__setitem__(s, dc), symbol=s, limit=500, ws_interval=100)
    wait_finished(log_path)
    time.sleep(2)
    report()
    t.stop()
