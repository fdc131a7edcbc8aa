"""The venue's REST request-weight limit as a pure core: fixed minutes, 429 with a wait, then 418 bans."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.request_weight import (
    FIRST_BAN_NS,
    IGNORED_429S_BEFORE_BAN,
    MAX_BAN_NS,
    MINUTE_NS,
    RequestWeightLimit,
)

IP = "127.0.0.1"
SNAPSHOT_5000 = 250
S = 1_000_000_000


def test_24_deep_snapshots_fit_in_a_minute_and_the_25th_is_refused_until_the_minute_ends() -> None:
    limit = RequestWeightLimit(6000)
    served = [limit.admit(IP, SNAPSHOT_5000, i * S) for i in range(24)]
    assert [d.status for d in served] == [200] * 24 and served[-1].used == 6000
    refused = limit.admit(IP, SNAPSHOT_5000, 40 * S)
    assert (refused.status, refused.used, refused.retry_after_ns) == (429, 6250, 20 * S)
    assert limit.admit(IP, SNAPSHOT_5000, MINUTE_NS).status == 200  # a fixed minute: the count starts again
    assert (limit.peak_per_minute, limit.refused_429, limit.refused_418) == (6250, 1, 0)


def test_minutes_are_fixed_not_sliding() -> None:
    """6,000 at the end of one minute and 6,000 at the start of the next are both served, as on Binance."""
    limit = RequestWeightLimit(6000)
    assert limit.admit(IP, 6000, MINUTE_NS - 1).status == 200
    assert limit.admit(IP, 6000, MINUTE_NS).status == 200
    assert limit.admit(IP, 1, MINUTE_NS + 1).status == 429


def test_each_ip_has_its_own_budget() -> None:
    limit = RequestWeightLimit(100)
    assert limit.admit(IP, 100, 0).status == 200
    assert limit.admit("127.0.0.2", 100, 0).status == 200
    assert limit.admit(IP, 1, 0).status == 429


def test_a_client_that_backs_off_after_a_429_is_never_banned() -> None:
    limit = RequestWeightLimit(6000)
    for minute in range(5):
        start = minute * MINUTE_NS
        for i in range(30):
            decision = limit.admit(IP, SNAPSHOT_5000, start + i * 10**6)
            if decision.status == 429:
                break  # waits out Retry-After: the rest of this minute
        assert decision.status == 429
    assert limit.bans == limit.refused_418 == 0 and limit.refused_429 == 5


def test_a_client_that_keeps_going_after_429s_is_banned_with_418_for_two_minutes() -> None:
    limit = RequestWeightLimit(6000)
    t = 0
    statuses = []
    for _ in range(24 + 1 + IGNORED_429S_BEFORE_BAN + 3):
        statuses.append(limit.admit(IP, SNAPSHOT_5000, t))
        t += 10**8
    codes = [d.status for d in statuses]
    assert codes == [200] * 24 + [429] * IGNORED_429S_BEFORE_BAN + [418] * 4
    ban = statuses[24 + IGNORED_429S_BEFORE_BAN]
    banned_at = (24 + IGNORED_429S_BEFORE_BAN) * 10**8
    assert ban.retry_after_ns == FIRST_BAN_NS and ban.ban_ends_ns == banned_at + FIRST_BAN_NS
    later = statuses[-1]
    assert later.ban_ends_ns == ban.ban_ends_ns and later.retry_after_ns == FIRST_BAN_NS - 3 * 10**8
    # The ban outlasts the minute: a new minute's budget does not lift it.
    assert limit.admit(IP, 1, MINUTE_NS + 1).status == 418
    assert limit.admit(IP, 1, ban.ban_ends_ns).status == 200
    assert (limit.refused_429, limit.refused_418, limit.bans) == (IGNORED_429S_BEFORE_BAN, 5, 1)


def test_repeat_offenders_are_banned_longer_up_to_three_days() -> None:
    limit = RequestWeightLimit(10)
    t = 0
    lengths = []
    for _ in range(14):
        while (decision := limit.admit(IP, 10, t)).status != 418:
            t += 1
        assert decision.retry_after_ns is not None and decision.ban_ends_ns is not None
        lengths.append(decision.retry_after_ns)
        t = decision.ban_ends_ns
    assert lengths[:3] == [FIRST_BAN_NS, 2 * FIRST_BAN_NS, 4 * FIRST_BAN_NS]
    assert lengths[-1] == MAX_BAN_NS == 3 * 24 * 60 * MINUTE_NS
    assert lengths == sorted(lengths)


def test_limit_zero_counts_the_weight_but_refuses_nothing() -> None:
    limit = RequestWeightLimit(0)
    assert all(limit.admit(IP, SNAPSHOT_5000, i).status == 200 for i in range(500))
    assert limit.peak_per_minute == 500 * SNAPSHOT_5000 and limit.refused_429 == limit.refused_418 == 0


def test_misuse_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="limit"):
        RequestWeightLimit(-1)
    with pytest.raises(ValueError, match="weight"):
        RequestWeightLimit(10).admit(IP, -1, 0)


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 3 * MINUTE_NS)), max_size=80))
def test_served_weight_never_exceeds_the_limit_in_any_fixed_minute(requests: list[tuple[int, int]]) -> None:
    limit = RequestWeightLimit(1000)
    served: dict[int, int] = {}
    for weight, t in sorted(requests, key=lambda r: r[1]):
        decision = limit.admit(IP, weight, t)
        if decision.status == 200:
            served[t // MINUTE_NS] = served.get(t // MINUTE_NS, 0) + weight
        else:
            assert decision.retry_after_ns is not None and decision.retry_after_ns > 0
    assert all(total <= 1000 for total in served.values())
