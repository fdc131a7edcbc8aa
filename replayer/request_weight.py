"""Binance's REST request-weight limit per IP, as a pure core the venue asks once per request.

Binance charges every REST request a weight (by endpoint and, for depth, by `limit`) against a budget
of 6,000 per IP per minute, counted in fixed minutes: a request at 00:01:23 counts towards the
00:01:00 minute, and the count starts again at zero at 00:02:00. Over the budget it answers 429 with
`Retry-After` (the seconds until the minute ends); a client that keeps sending instead of backing off
is banned with 418 (also with `Retry-After`, until the ban ends), for 2 minutes at first and longer
for repeat offenders, up to 3 days. A client that refetches a 5,000-level snapshot (weight 250) in a
loop works against a lenient fake and is banned in production, so the fake enforces the limit.

What Binance does not publish, and so is this module's choice: a ban comes with the
`IGNORED_429S_BEFORE_BAN`-th request refused with 429 while an earlier 429's `Retry-After` was still
running (requests already in flight when the first 429 came are tolerated); each ban doubles the
previous one's length; refused requests count their weight too; requests during a ban are refused
without counting. `now_ns` is whatever clock the caller keeps (the venue passes its replay clock, so
a sped-up replay has sped-up minutes); this module never reads one.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE_NS = 60_000_000_000
FIRST_BAN_NS = 2 * MINUTE_NS
MAX_BAN_NS = 3 * 24 * 60 * MINUTE_NS
IGNORED_429S_BEFORE_BAN = 5


@dataclass(frozen=True, slots=True)
class WeightDecision:
    """The answer to one request: `status` 200 (serve it), 429 or 418.

    `used` is the IP's weight in the current minute after this request (the `X-MBX-USED-WEIGHT-1M`
    value); `retry_after_ns` is how long the client must wait (None when served); `ban_ends_ns` is the
    end of the ban on the caller's clock (418 only).
    """

    status: int
    used: int
    retry_after_ns: int | None = None
    ban_ends_ns: int | None = None


@dataclass(slots=True)
class _IpState:
    minute: int = -1
    used: int = 0
    told_to_wait_until: int = 0
    ignored_429s: int = 0
    banned_until: int = 0
    bans: int = 0


class RequestWeightLimit:
    """Admits REST requests per IP within `limit` weight per fixed minute; `limit` 0 counts but never refuses.

    Counters for the report: `peak_per_minute` (the most weight one IP asked for in one minute),
    `refused_429`, `refused_418` and `bans`.
    """

    __slots__ = ("_ips", "bans", "limit", "peak_per_minute", "refused_418", "refused_429")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0 (0 turns enforcement off), got {limit}")
        self.limit = limit
        self._ips: dict[str, _IpState] = {}
        self.peak_per_minute = 0
        self.refused_429 = 0
        self.refused_418 = 0
        self.bans = 0

    def admit(self, ip: str, weight: int, now_ns: int) -> WeightDecision:
        """Charges `weight` to `ip` at `now_ns` and says whether the request is served."""
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _IpState()
        minute = now_ns // MINUTE_NS
        if minute != state.minute:
            state.minute, state.used, state.ignored_429s = minute, 0, 0
        if now_ns < state.banned_until:
            self.refused_418 += 1
            return WeightDecision(418, state.used, state.banned_until - now_ns, state.banned_until)
        state.used += weight
        self.peak_per_minute = max(self.peak_per_minute, state.used)
        if not self.limit or state.used <= self.limit:
            return WeightDecision(200, state.used)
        if now_ns < state.told_to_wait_until:
            state.ignored_429s += 1
            if state.ignored_429s >= IGNORED_429S_BEFORE_BAN:
                return self._ban(state, now_ns)
        state.told_to_wait_until = (minute + 1) * MINUTE_NS
        self.refused_429 += 1
        return WeightDecision(429, state.used, state.told_to_wait_until - now_ns)

    def _ban(self, state: _IpState, now_ns: int) -> WeightDecision:
        length = min(FIRST_BAN_NS << state.bans, MAX_BAN_NS)
        state.bans += 1
        state.banned_until = now_ns + length
        state.ignored_429s = 0
        self.bans += 1
        self.refused_418 += 1
        return WeightDecision(418, state.used, length, state.banned_until)
