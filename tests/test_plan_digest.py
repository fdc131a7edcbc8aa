"""The fault plan's schedule, pinned by digest: every library scenario x two seeds on the bundled
multi-stream synth and the real Binance spot slice, plus fault orders the library does not use.

The digests were taken from the eager planner (one Slot per frame) before the schedule became lazy;
a change here changes what a seed means (docs/scenarios.md), so it is never a silent update.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from harness.scenarios import list_scenarios
from harness.venues.dialect import VenueDialect
from replayer.faults import FaultPlan, build_schedule, fault
from replayer.replay_data import ReplayData, load_replay_data
from replayer.timeline import Frame, Send, TimelineEntry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEEDS = (1, 7)


def entry_key(entry: TimelineEntry) -> tuple[object, ...]:
    """A comparable tuple: a Send names its frame and says whether its payload is the recorded one."""
    if isinstance(entry, Send):
        payload = "" if entry.payload is entry.frame.payload else hashlib.sha256(entry.payload).hexdigest()[:16]
        return ("Send", entry.offset_ns, entry.frame.index, payload, entry.fault, entry.binary, entry.tags)
    return (type(entry).__name__, *(getattr(entry, name) for name in entry.__slots__))


def plan_digest(plan: FaultPlan) -> str:
    digest = hashlib.sha256()
    for entry in plan.entries:
        digest.update(repr(entry_key(entry)).encode())
    units = [(u.kind, u.fault_id, u.unit, sorted(u.parts)) for u in plan.units]
    summary = (plan.injected, units, plan.fault_ids, plan.windows, plan.sequence_breaks, plan.not_applicable)
    digest.update(repr(summary).encode())
    return digest.hexdigest()[:16]


def digests(frames: Sequence[Frame], seeds: Iterable[int], dialect: VenueDialect) -> dict[str, str]:
    return {
        f"{scenario.name}/{seed}": plan_digest(scenario.plan(frames, seed, dialect))
        for scenario in list_scenarios()
        for seed in seeds
    }


SAMPLE = [
    (fixture, seed) for fixture in ("binance_spot_multi_synth", "binance_spot_btcusdt_real_60s") for seed in SEEDS
]


@functools.cache
def _data(fixture: str) -> ReplayData:
    return load_replay_data(FIXTURES / fixture)


@pytest.mark.parametrize(("fixture", "seed"), SAMPLE)
def test_library_schedules_are_pinned(fixture: str, seed: int) -> None:
    data = _data(fixture)
    got = digests(data.frames, [seed], data.dialect)
    assert got == {key: value for key, value in LIBRARY[fixture].items() if key.endswith(f"/{seed}")}


ODD_ORDERS = {
    "reorder_then_duplicate": [
        fault("reorder", start="10%", stop="70%", window=3, probability=0.5),
        fault("duplicate", start="10%", stop="70%", probability=0.3, lag_frames=2),
    ],
    "duplicate_then_drop_gap": [
        fault("duplicate", start="10%", stop="70%", probability=0.3, lag_frames=1),
        fault("drop", start="20%", stop="60%", mode="random", probability=0.2),
        fault("gap", start="10%", stop="70%", count=5, length=4),
    ],
    "burst_then_reorder_corrupt": [
        fault("burst", start="10%", stop="70%", count=3, hold=1.0, frames="all"),
        fault("reorder", start="10%", stop="70%", window=2, probability=0.4),
        fault("corrupt", start="10%", stop="70%", probability=0.2, mode="mixed"),
        fault("duplicate", start="10%", stop="70%", probability=0.2),
    ],
    "delay_then_drop_hold": [
        fault("delay", start="10%", stop="60%", base=0.05, jitter=0.2, probability=0.3),
        fault("drop", start="10%", stop="60%", mode="nth", every=5),
        fault("slow_consumer", start="30%", stop="50%", hold=2.0),
        fault("corrupt", start="0%", stop="80%", probability=0.1, mode="truncated"),
    ],
    "restart_snapshot_gap": [
        fault("corrupt", start="5%", stop="80%", probability=0.1),
        fault("exchange_restart", start="40%", stop="50%", rest_outage=2.0),
        fault("snapshot", start="20%", stop="30%", mode="stale", trigger="gap"),
        fault("duplicate", start="30%", stop="60%", probability=0.5, lag_frames=4),
        fault("delay", start="35%", stop="55%", jitter=0.1),
    ],
}


@pytest.mark.parametrize("seed", SEEDS)
def test_odd_fault_orders_are_pinned(seed: int) -> None:
    data = _data("binance_spot_multi_synth")
    got = {
        f"{name}/{seed}": plan_digest(build_schedule(data.frames, faults, seed, data.dialect))
        for name, faults in ODD_ORDERS.items()
    }
    assert got == {key: value for key, value in ODD.items() if key.endswith(f"/{seed}")}


LIBRARY: dict[str, dict[str, str]] = {
    "binance_spot_multi_synth": {
        "burst_10x/1": "7cdcda39c8407aa2",
        "burst_10x/7": "6391ea502846cab7",
        "chaos/1": "25b2d989b2ec6512",
        "chaos/7": "9803b2aace5919f5",
        "clean/1": "96ddbb89dd6c3df8",
        "clean/7": "96ddbb89dd6c3df8",
        "corrupt_frames/1": "8fd91c1ab94d2365",
        "corrupt_frames/7": "75f3feea401c5009",
        "dup_flood/1": "92bdf643f35001a3",
        "dup_flood/7": "0479fc9fed49f964",
        "exchange_restart/1": "f04f3428f6ab08c3",
        "exchange_restart/7": "f04f3428f6ab08c3",
        "flappy_connection/1": "0676c68a37a80bcb",
        "flappy_connection/7": "9b9f7a9d536ac61a",
        "gap_storm/1": "d0e838bfc95b98da",
        "gap_storm/7": "17912f3c95272180",
        "jitter/1": "926eacf4dcee3412",
        "jitter/7": "3564fd28c683333e",
        "reorder_window/1": "5f89245ae53161a3",
        "reorder_window/7": "f3bf49d9a1752223",
        "restart_rest_outage/1": "d4cc212b3481e880",
        "restart_rest_outage/7": "d4cc212b3481e880",
        "slow_consumer/1": "4277b484ac059b19",
        "slow_consumer/7": "4277b484ac059b19",
        "snapshot_errors/1": "2c3b0573f23f6ab1",
        "snapshot_errors/7": "2c3b0573f23f6ab1",
        "stale_snapshot/1": "b863890432aa8513",
        "stale_snapshot/7": "b863890432aa8513",
        "stall_half_open/1": "2714f83287c03730",
        "stall_half_open/7": "4fb5278b1d94a454",
    },
    "binance_spot_btcusdt_real_60s": {
        "burst_10x/1": "db50122f322649c2",
        "burst_10x/7": "b06d2814d103ce74",
        "chaos/1": "b7f65e20fc2d5155",
        "chaos/7": "1db62143242dbe91",
        "clean/1": "59a1f4ad70323135",
        "clean/7": "59a1f4ad70323135",
        "corrupt_frames/1": "a02f2da0bbfa05b5",
        "corrupt_frames/7": "0871212f60e2e119",
        "dup_flood/1": "1ccc623f7a9049cf",
        "dup_flood/7": "8db2a8949834d7a2",
        "exchange_restart/1": "8e1b66c452e72bca",
        "exchange_restart/7": "8e1b66c452e72bca",
        "flappy_connection/1": "4e8dcd5ad33f8916",
        "flappy_connection/7": "d9623949154db014",
        "gap_storm/1": "6bbad83a147b6b8c",
        "gap_storm/7": "91c81b68e920aa64",
        "jitter/1": "9f9421d9da7e860f",
        "jitter/7": "2e9ab943c07b1b14",
        "reorder_window/1": "3f7772ba63648664",
        "reorder_window/7": "2e8f6b79ffb39052",
        "restart_rest_outage/1": "76d6c2da9dd78069",
        "restart_rest_outage/7": "76d6c2da9dd78069",
        "slow_consumer/1": "6a9253473ef361a4",
        "slow_consumer/7": "6a9253473ef361a4",
        "snapshot_errors/1": "5248c749458fb7ad",
        "snapshot_errors/7": "5248c749458fb7ad",
        "stale_snapshot/1": "6440a10108afb4a9",
        "stale_snapshot/7": "6440a10108afb4a9",
        "stall_half_open/1": "78b22c7bc09f661f",
        "stall_half_open/7": "36147772de36d888",
    },
}
ODD: dict[str, str] = {
    "reorder_then_duplicate/1": "2f1a5bab7e3f3868",
    "reorder_then_duplicate/7": "34155cf37581a661",
    "duplicate_then_drop_gap/1": "b8331d570cf2c9c7",
    "duplicate_then_drop_gap/7": "d457388cde73d014",
    "burst_then_reorder_corrupt/1": "544e830155633413",
    "burst_then_reorder_corrupt/7": "329c7885f7db0978",
    "delay_then_drop_hold/1": "9122a698852a786a",
    "delay_then_drop_hold/7": "d9444767a21facb7",
    "restart_snapshot_gap/1": "2833ef26696afdf0",
    "restart_snapshot_gap/7": "9385e9b31288621a",
}
