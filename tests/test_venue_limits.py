"""Each venue's own limits are the fake venue's defaults, whichever entry point serves the recording.

`harness replay`, `harness serve`, `FakeVenue` and the suite used to pass Binance spot's numbers to every
venue; they now leave each limit the user did not give to the recording's venue (its wire's
`WireLimits`), and the table below is docs/venues.md's "Limits" table. The replay report's
`venue.rest_weight.limit` is checked on a real USD-M and OKX replay in tests/test_venue_replay.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.venues.registry import DIALECTS
from replayer.replay_data import load_replay_data, wire_of
from replayer.serve_command import ServeLimits, _venue_or
from replayer.server import VENUE, VenueServer
from replayer.venue_limits import VenueLimits

REPO = Path(__file__).resolve().parents[1]
USDM_REAL = REPO / "fixtures" / "binance_usdm_btcusdt_real_30s"

OWN = {
    # venue: (client messages a second, streams a connection, REST weight a minute; None/0: none)
    "binance-spot": (5, 1024, 6000),
    "binance-usdm": (10, 1024, 2400),
    "bybit": (None, 10_000, 0),
    "okx": (None, 1024, 0),
}


def _numbers(limits: VenueLimits) -> tuple[int | None, int | None, int]:
    return limits.messages_per_second, limits.streams_per_connection, limits.rest_weight_per_minute


@pytest.mark.parametrize("venue", sorted(DIALECTS))
def test_each_venue_s_wire_carries_its_own_limits(venue: str) -> None:
    wire = DIALECTS[venue].wire()
    assert wire is not None
    assert _numbers(VenueLimits.of(wire)) == OWN[venue]


def test_a_usdm_recording_is_served_with_usdm_s_limits_unless_the_user_gives_others() -> None:
    data = load_replay_data(USDM_REAL)
    wire = wire_of(data)
    assert _numbers(VenueServer(data, wire=wire).limits) == OWN["binance-usdm"]
    given = VenueServer(data, wire=wire, rest_weight_limit=0, messages_per_second=3, max_streams_per_connection=None)
    assert _numbers(given.limits) == (3, None, 0)


def test_serve_prints_the_venue_s_numbers_for_options_left_unset() -> None:
    usdm = VenueLimits.of(DIALECTS["binance-usdm"].wire())  # type: ignore[arg-type]
    shown = ServeLimits().describe(usdm)
    assert "max streams per connection 1024, messages per second 10," in shown
    okx = VenueLimits.of(DIALECTS["okx"].wire())  # type: ignore[arg-type]
    assert "messages per second off" in ServeLimits().describe(okx)
    # What the user typed goes to the server as given (0: off); what they left unset, as the venue's.
    assert (_venue_or(None), _venue_or(0), _venue_or(3)) == (VENUE, None, 3)
