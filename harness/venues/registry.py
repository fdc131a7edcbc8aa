"""The venues the harness speaks, by the names users type on the command line.

Each venue package under `harness/venues/` exposes one `DIALECT` (harness/venues/dialect.py); this
module is the only place that knows which packages exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from harness.errors import HarnessError
from harness.venues.binance_spot import DIALECT as BINANCE_SPOT
from harness.venues.binance_spot import oracle_rule as binance_spot_oracle_rule
from harness.venues.binance_usdm import DIALECT as BINANCE_USDM
from harness.venues.binance_usdm import oracle_rule as binance_usdm_oracle_rule
from harness.venues.bybit import DIALECT as BYBIT
from harness.venues.bybit import oracle_rule as bybit_oracle_rule
from harness.venues.dialect import VenueDialect
from harness.venues.okx import DIALECT as OKX
from harness.venues.okx import oracle_rule as okx_oracle_rule

DIALECTS: dict[str, VenueDialect] = {dialect.name: dialect for dialect in (BINANCE_SPOT, BINANCE_USDM, BYBIT, OKX)}
ORACLE_RULES: dict[str, ModuleType] = {
    BINANCE_SPOT.name: binance_spot_oracle_rule,
    BINANCE_USDM.name: binance_usdm_oracle_rule,
    BYBIT.name: bybit_oracle_rule,
    OKX.name: okx_oracle_rule,
}
"""Each venue's `oracle_rule.py`, the oracle's own copy of its rule (harness/oracle.py, `oracle_rule`)."""


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


def oracle_rule_of(name: str) -> ModuleType:
    """Venue `name`'s `oracle_rule` module; HarnessError naming the known venues for any other."""
    return ORACLE_RULES[dialect(name).name]
