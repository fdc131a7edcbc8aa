"""What each symbol's book was, as the checker saw it, over the run; and the books that stayed "synced" in silence.

The checker marks every change (`unsynced`, `synced`, `diverged`: synced but wrong) with its monotonic
time. Two things read it afterwards: the HTML report's sync timeline, and the stale-book search
(`silent_while_synced`), which asks whether the subject still claimed a synced book once the venue had
written nothing to any of its connections for longer than the scenario's limit while updates for that
symbol were due. A quiet market is no silence here: only a frame that was due and did not come starts
one. Pure: the caller passes every time in.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

UNSYNCED, SYNCED, DIVERGED = "unsynced", "synced", "diverged"
CLAIMS_SYNCED = frozenset({SYNCED, DIVERGED})
"""States in which the subject says its book is synced (the checker may know better)."""


@dataclass(slots=True)
class SyncTimeline:
    """Per symbol, the times (ascending) at which the checker's view of its book changed, and the states."""

    times: dict[str, list[int]] = field(default_factory=dict)
    states: dict[str, list[str]] = field(default_factory=dict)
    episode_starts: dict[str, list[int]] = field(default_factory=dict)
    """When each snapshot episode began (the first sync, then every resync)."""

    def mark(self, symbol: str, t: int, state: str) -> None:
        """Records `state` from `t` on; a repeat of the current state is no change. Times never go back:
        a subject's reports arrive in the order it made them, and a stamp from the past is held at the last."""
        times = self.times.setdefault(symbol, [])
        states = self.states.setdefault(symbol, [])
        if states and states[-1] == state:
            return
        if times and t < times[-1]:
            t = times[-1]
        if times and t == times[-1]:
            states[-1] = state
            if len(states) > 1 and states[-2] == state:
                times.pop()
                states.pop()
            return
        times.append(t)
        states.append(state)

    def episode(self, symbol: str, t: int) -> None:
        self.episode_starts.setdefault(symbol, []).append(t)

    def state_at(self, symbol: str, t: int) -> str:
        times = self.times.get(symbol, [])
        i = bisect_right(times, t) - 1
        return self.states[symbol][i] if i >= 0 else UNSYNCED

    def claims_synced_during(self, symbol: str, start: int, end: int) -> int | None:
        """The first moment in [start, end] at which the subject claimed a synced book, or None."""
        if self.state_at(symbol, start) in CLAIMS_SYNCED:
            return start
        times = self.times.get(symbol, [])
        for i in range(bisect_right(times, start), bisect_right(times, end)):
            if self.states[symbol][i] in CLAIMS_SYNCED:
                return times[i]
        return None


@dataclass(frozen=True, slots=True)
class Silence:
    """Nothing reached the subject from `due_ns` (the first update it should have had) until `until_ns`
    (the next write, or the end of the run); it claimed synced at `claimed_ns`, past the limit."""

    symbol: str
    due_ns: int
    until_ns: int
    claimed_ns: int


def silent_while_synced(
    timeline: SyncTimeline,
    symbol: str,
    due: Sequence[int],
    writes: Sequence[int],
    limit_ns: int,
    end_ns: int,
) -> list[Silence]:
    """Each silence of more than `limit_ns` in which the symbol's book still claimed synced after the limit.

    `due`: when the symbol's clean depth frames were due (ascending); `writes`: when the venue wrote
    anything to any of the subject's connections (ascending); `end_ns`: when the run ended. One finding
    per silence, however many updates it swallowed.
    """
    if limit_ns <= 0:
        raise ValueError(f"the stale limit must be positive, not {limit_ns} ns")
    found: list[Silence] = []
    i = 0
    while i < len(due):
        start = due[i]
        k = bisect_left(writes, start)
        until = writes[k] if k < len(writes) else end_ns
        if until - start > limit_ns and start + limit_ns <= end_ns:
            claimed = timeline.claims_synced_during(symbol, start + limit_ns, min(until, end_ns))
            if claimed is not None:
                found.append(Silence(symbol, start, until, claimed))
        if k == len(writes):
            break
        i = max(i + 1, bisect_right(due, until, i))
    return found
