"""The venues the harness speaks, by the names users type on the command line.

Each venue package under `harness/venues/` exposes one `DIALECT` (harness/venues/dialect.py); this
module is the only place that knows which packages exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.venues.binance_spot import DIALECT as BINANCE_SPOT
from harness.venues.binance_usdm import DIALECT as BINANCE_USDM
from harness.venues.dialect import VenueDialect
from harness.venues.okx import DIALECT as OKX

DIALECTS: dict[str, VenueDialect] = {dialect.name: dialect for dialect in (BINANCE_SPOT, BINANCE_USDM, OKX)}


@dataclass(frozen=True, slots=True)
class VenueInfo:
    """Where a venue lives in production; the recorder connects there unless told otherwise."""

    name: str
    ws_url: str
    rest_url: str


def dialect(name: str) -> VenueDialect:
    """The venue called `name`; HarnessError naming the known ones for any other."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise HarnessError(f"unknown venue {name!r}; known venues: {', '.join(sorted(DIALECTS))}") from None


def venue_info(name: str) -> VenueInfo:
    found = dialect(name)
    return VenueInfo(found.name, found.live_ws_url, found.live_rest_url)


def package_of(name: str) -> str:
    """The Python package that holds venue `name` (`binance-usdm` -> `harness.venues.binance_usdm`)."""
    return f"harness.venues.{dialect(name).name.replace('-', '_')}"
