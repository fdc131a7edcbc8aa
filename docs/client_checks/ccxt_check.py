"""ccxt.pro binance watch_order_book against `harness serve`: REST snapshots, sync errors, top 5 at the end."""

import asyncio
import json
import sys

import ccxt.pro as ccxtpro
from check_common import venue_top, wait_finished

rest, ws, symbols, log_path = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]


def rewrite(node):
    if isinstance(node, dict):
        return {k: rewrite(v) for k, v in node.items()}
    if isinstance(node, str) and node.startswith("https://api.binance.com"):
        return rest + node[len("https://api.binance.com") :]
    return node


stats = {s: {"rest_depth": [], "errors": [], "updates": 0} for s in symbols}
books = {}


async def main():
    ex = ccxtpro.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.urls["api"] = rewrite(ex.urls["api"])
    ex.urls["api"]["ws"]["spot"] = ws + "/ws"
    orig = ex.fetch_rest_order_book_safe

    async def counted(symbol, limit=None, params=None):
        ob = await orig(symbol, limit, params or {})
        stats[symbol.replace("/", "")]["rest_depth"].append(ob["nonce"])
        return ob

    ex.fetch_rest_order_book_safe = counted
    await ex.load_markets()

    async def one(s):
        sym = s[:-4] + "/USDT"
        while True:
            try:
                ob = await ex.watch_order_book(sym)
                stats[s]["updates"] += 1
                books[s] = ob
            except Exception as e:  # a user's loop would re-watch; count what happened
                stats[s]["errors"].append(f"{type(e).__name__}: {e}"[:160])

    tasks = [asyncio.create_task(one(s)) for s in symbols]
    await asyncio.get_running_loop().run_in_executor(None, wait_finished, log_path)
    await asyncio.sleep(2)
    out = {}
    for s in symbols:
        ob = books.get(s)
        vid, vb, va = venue_top(rest, s)
        cb = [list(x) for x in ob["bids"][:5]] if ob else None
        ca = [list(x) for x in ob["asks"][:5]] if ob else None
        st = stats[s]
        out[s] = {
            "rest_depth_requests": len(st["rest_depth"]),
            "snapshot_ids": st["rest_depth"][:6],
            "errors": len(st["errors"]),
            "error_examples": st["errors"][:2],
            "updates": st["updates"],
            "client_nonce": ob["nonce"] if ob else None,
            "venue_lastUpdateId": vid,
            "top5_equal": cb == vb and ca == va,
            "client_top": [cb[:1] if cb else None, ca[:1] if ca else None],
            "venue_top": [vb[:1], va[:1]],
        }
    print(
        json.dumps(
            {"client": "ccxt " + ccxtpro.__version__ if hasattr(ccxtpro, "__version__") else "ccxt", "symbols": out},
            indent=1,
        )
    )
    for t in tasks:
        t.cancel()
    await ex.close()


asyncio.run(main())
