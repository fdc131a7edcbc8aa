"""Fault injection: pure, seeded transforms from clean frames to the schedule the fake server walks.

`build_schedule(frames, faults, seed)` is the entry point; spec.py declares every fault kind and its
parameters; stream.py, connection.py and rest.py hold the families; docs/scenarios.md describes them.
"""

from replayer.faults.plan import HEAL_BY_FRACTION, FaultPlan, build_schedule, sequence_breaks
from replayer.faults.spec import FAULT_KINDS, FAULT_PARAMS, FaultSpec, TimePoint, fault, parse_fault
from replayer.faults.work import FaultWindow

__all__ = [
    "FAULT_KINDS",
    "FAULT_PARAMS",
    "HEAL_BY_FRACTION",
    "FaultPlan",
    "FaultSpec",
    "FaultWindow",
    "TimePoint",
    "build_schedule",
    "fault",
    "parse_fault",
    "sequence_breaks",
]
