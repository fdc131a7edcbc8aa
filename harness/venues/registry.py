"""The venues the harness speaks, by the names users type on the command line."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError


@dataclass(frozen=True, slots=True)
class VenueInfo:
    """Where a venue lives in production; the recorder connects there unless told otherwise."""

    name: str
    ws_url: str
    rest_url: str


VENUES: dict[str, VenueInfo] = {
    "binance-spot": VenueInfo(
        name="binance-spot",
        ws_url="wss://stream.binance.com:9443",
        rest_url="https://api.binance.com",
    ),
}


def venue_info(name: str) -> VenueInfo:
    try:
        return VENUES[name]
    except KeyError:
        known = ", ".join(sorted(VENUES))
        raise HarnessError(f"unknown venue {name!r}; known venues: {known}") from None
