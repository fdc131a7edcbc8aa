"""What a fault is, before it meets a recording: its kind, its window and its checked parameters.

Every kind's parameters are declared here once, so the scenario loader can reject a typo, a wrong type
or an out-of-range value with the key's name before anything runs. A window is given in seconds from
replay start or as a fraction of the recording ("25%"); it becomes nanoseconds only in plan.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError

_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: accepted Python types (bool is never a number), default, and bounds or choices."""

    types: tuple[type, ...]
    default: Any = _REQUIRED
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        text = names[self.types[-1]]
        if self.minimum is not None and self.maximum is not None:
            return f"{text} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{text} >= {self.minimum:g}"
        return text

    def check(self, value: Any) -> Any | None:
        """The value converted (an int where a float is wanted becomes a float), or None if it is wrong."""
        if isinstance(value, bool) and bool not in self.types:
            return None
        if not isinstance(value, self.types):
            return None
        if float in self.types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.choices and value not in self.choices:
            return None
        if self.minimum is not None and value < self.minimum:
            return None
        if self.maximum is not None and value > self.maximum:
            return None
        return value


def _prob(default: float) -> Param:
    return Param((int, float), default, minimum=0.0, maximum=1.0)


def _seconds(default: float, minimum: float = 0.0) -> Param:
    return Param((int, float), default, minimum=minimum)


def _count(default: int, minimum: int = 1) -> Param:
    return Param((int,), default, minimum=minimum)


def _frames(default: str) -> Param:
    return Param((str,), default, choices=("depth", "all"))


FAULT_PARAMS: dict[str, dict[str, Param]] = {
    "drop": {
        "frames": _frames("depth"),
        "mode": Param((str,), "random", choices=("random", "nth", "gilbert_elliott")),
        "probability": _prob(0.05),
        "every": _count(10, minimum=2),
        "p_enter_bad": _prob(0.05),
        "p_leave_bad": _prob(0.3),
        "loss_bad": _prob(1.0),
        "loss_good": _prob(0.0),
    },
    "gap": {"count": _count(1), "length": _count(5)},
    "duplicate": {"frames": _frames("depth"), "probability": _prob(0.1), "lag_frames": _count(0, minimum=0)},
    "reorder": {"frames": _frames("depth"), "window": _count(3, minimum=2), "probability": _prob(1.0)},
    "delay": {"frames": _frames("all"), "base": _seconds(0.0), "jitter": _seconds(0.05), "probability": _prob(1.0)},
    "burst": {"frames": _frames("all"), "count": _count(1), "hold": _seconds(1.0, minimum=0.001)},
    "corrupt": {
        "frames": _frames("depth"),
        "probability": _prob(0.05),
        "mode": Param(
            (str,), "mixed", choices=("invalid_json", "truncated", "wrong_types", "invalid_utf8", "checksum", "mixed")
        ),
    },
    "stall": {
        "count": _count(1),
        "duration": _seconds(2.0, minimum=0.001),
        "answer_pings": Param((bool,), False),
        "mode": Param((str,), "late", choices=("late", "half_open")),
    },
    "disconnect": {
        "count": _count(1),
        "spacing": _seconds(1.0),
        "mode": Param((str,), "close", choices=("close", "abort", "reset", "mixed")),
        "code": Param((int,), 1001, minimum=1000, maximum=4999),
        "reason": Param((str,), ""),
    },
    "handshake_refused": {
        "status": Param((int,), 503, choices=(429, 503)),
        "attempts": _count(3),
        "disconnect": Param((bool,), True),
    },
    "snapshot": {
        "mode": Param((str,), choices=("stale", "barely_stale", "too_new", "slow", "error")),
        "requests": _count(1),
        "status": Param((int,), 503, choices=(418, 429, 500, 502, 503, 504)),
        "delay": _seconds(2.0),
        "lag_frames": _count(10),
        "lag_updates": _count(2, minimum=1),
        "trigger": Param((str,), "disconnect", choices=("disconnect", "gap", "none")),
    },
    "slow_consumer": {"max_bytes": _count(4096), "hold": _seconds(2.0, minimum=0.001)},
    "exchange_restart": {
        "mode": Param((str,), "close", choices=("close", "abort", "reset")),
        "code": Param((int,), 1012, minimum=1000, maximum=4999),
        "rest_outage": _seconds(0.0),
    },
}
"""Every fault kind and its parameters; docs/scenarios.md describes each one."""

FAULT_KINDS: tuple[str, ...] = tuple(FAULT_PARAMS)

CONFLICTS: dict[str, tuple[tuple[str, Any, str, Any, str], ...]] = {
    "stall": (
        (
            "mode",
            "half_open",
            "answer_pings",
            True,
            "a half-open connection answers nothing; answer_pings applies to mode 'late' only",
        ),
    ),
}
"""Per kind: (key, value, other key, other value, why) pairs that cannot be given together."""


@dataclass(frozen=True, slots=True)
class TimePoint:
    """A moment in the replay: `value` seconds from start, or `value` as a fraction of the recording."""

    value: float
    fraction: bool

    def to_ns(self, duration_ns: int) -> int:
        return round(self.value * duration_ns) if self.fraction else round(self.value * 1e9)

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.fraction else f"{self.value:g}s"


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault as a scenario states it.

    `fault_id` names its random stream; left empty, the plan calls it `kind.N` (the Nth of its kind),
    so a fault of another kind added anywhere does not change this one's decisions.
    """

    kind: str
    start: TimePoint
    stop: TimePoint
    params: Mapping[str, Any] = field(default_factory=dict)
    fault_id: str = ""


def parse_time(value: Any) -> TimePoint | None:
    """`12.5` (seconds) or `"40%"`; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return TimePoint(float(value), False) if value >= 0 else None
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            return None
        return TimePoint(percent / 100, True) if 0 <= percent <= 100 else None
    return None


def parse_fault(table: Mapping[str, Any], where: str) -> FaultSpec:
    """A FaultSpec from one `[[faults]]` table; a bad key raises HarnessError naming `where` and the key."""
    kind = table.get("kind")
    if kind is None:
        raise HarnessError(f"{where}: missing key 'kind' (expected one of {', '.join(FAULT_KINDS)})")
    if kind not in FAULT_PARAMS:
        raise HarnessError(
            f"{where}: key 'kind': unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
        )
    declared = FAULT_PARAMS[kind]
    times: dict[str, TimePoint] = {}
    for key in ("start", "stop"):
        if key not in table:
            raise HarnessError(
                f"{where} ({kind}): missing key {key!r} (seconds from start, or a percentage like '25%')"
            )
        point = parse_time(table[key])
        if point is None:
            raise HarnessError(
                f"{where} ({kind}): key {key!r}: expected seconds >= 0 or a percentage like '25%', got {table[key]!r}"
            )
        times[key] = point
    if times["start"].fraction == times["stop"].fraction and times["stop"].value < times["start"].value:
        raise HarnessError(f"{where} ({kind}): key 'stop': {times['stop']} is before start {times['start']}")
    fault_id = table.get("id", "")
    if not isinstance(fault_id, str) or ("id" in table and not fault_id):
        raise HarnessError(f"{where} ({kind}): key 'id': expected a non-empty string, got {fault_id!r}")
    params: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("kind", "start", "stop", "id"):
            continue
        param = declared.get(key)
        if param is None:
            known = ", ".join(["start", "stop", "id", *declared])
            raise HarnessError(f"{where} ({kind}): unknown key {key!r}; expected one of {known}")
        checked = param.check(value)
        if checked is None:
            raise HarnessError(f"{where} ({kind}): key {key!r}: expected {param.expected()}, got {value!r}")
        params[key] = checked
    for key, param in declared.items():
        if key not in params:
            if param.default is _REQUIRED:
                raise HarnessError(f"{where} ({kind}): missing key {key!r} (expected {param.expected()})")
            params[key] = param.default
    for key, value, other, other_value, why in CONFLICTS.get(kind, ()):
        if params[key] == value and params[other] == other_value:
            raise HarnessError(f"{where} ({kind}): key {other!r}: {other}={other_value!r} with {key}={value!r}: {why}")
    return FaultSpec(kind=kind, start=times["start"], stop=times["stop"], params=params, fault_id=fault_id)


def fault(kind: str, start: float | str, stop: float | str, fault_id: str = "", **params: Any) -> FaultSpec:
    """A FaultSpec from Python (tests, the pytest plugin), checked exactly as a scenario file is."""
    table: dict[str, Any] = {"kind": kind, "start": start, "stop": stop, **params}
    if fault_id:
        table["id"] = fault_id
    return parse_fault(table, f"fault {kind}")
