"""Which venue a capture recorded, named from the hosts its URLs reach (the cryptofeed importers)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import HarnessError
from harness.venues.registry import DIALECTS

OTHER_HOSTS = {
    "wsaws.okx.com": "okx",
    "ws.okex.com": "okx",
    "stream-testnet.bybit.com": "bybit",
    "data-stream.binance.vision": "binance-spot",
    "advanced-trade-ws.coinbase.com": "coinbase",
}
"""Hosts a venue's public streams are also served from; each registered venue's own is its `live_ws_url`'s."""


def venue_of_urls(source: Path, urls: Iterable[str]) -> str:
    """The one venue the URLs reach; HarnessError asking for `--venue` when none or several."""
    known = {urlsplit(d.live_ws_url).hostname: name for name, d in DIALECTS.items()} | OTHER_HOSTS
    hosts = sorted({urlsplit(url).hostname or url for url in urls})
    venues = sorted({known[host] for host in hosts if host in known})
    if len(venues) == 1:
        return venues[0]
    if not venues:
        raise HarnessError(
            f"{source}: cannot tell the venue from the capture's URLs ({', '.join(hosts) or 'none'}); "
            f"pass --venue ({', '.join(sorted(DIALECTS))})"
        )
    raise HarnessError(f"{source}: URLs of several venues ({', '.join(venues)}); pass --venue")
