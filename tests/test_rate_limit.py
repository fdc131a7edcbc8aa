"""The venue's message-rate limit against a brute-force model of "at most N in any one second"."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.rate_limit import WINDOW_NS, MessageRateLimit


def test_the_sixth_message_within_a_second_is_refused_and_one_a_second_later_admitted() -> None:
    limit = MessageRateLimit(5)
    assert all(limit.admit(t) for t in range(0, 500_000_000, 100_000_000))
    assert not limit.admit(999_999_999)
    assert limit.admit(WINDOW_NS)
    assert not limit.admit(WINDOW_NS + 1)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MessageRateLimit(0)


@given(
    per_second=st.integers(1, 10),
    gaps=st.lists(st.integers(0, 400_000_000), max_size=200),
)
def test_admits_exactly_what_keeps_every_window_within_the_limit(per_second: int, gaps: list[int]) -> None:
    limit = MessageRateLimit(per_second)
    admitted: list[int] = []
    for now in itertools.accumulate(gaps):
        in_window = sum(1 for t in admitted if now - t < WINDOW_NS)
        expected = in_window < per_second
        assert limit.admit(now) is expected
        if expected:
            admitted.append(now)
