"""Scenario files written from FaultSpecs: what `harness search` hands back, in the format it reads.

The text is built here and checked by the loader itself (`parse_scenario`), so a written file is one
`harness replay --scenario FILE` accepts and that plans the same faults: `round_trip` is the check.
Only the parameters that differ from a kind's default are written, so the file reads like one a person
wrote. Floats use `repr`, which TOML reads back to the same double.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from harness.scenarios import Scenario, parse_scenario
from replayer.faults.spec import FAULT_PARAMS, FaultSpec, TimePoint


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML has no {value!r} a scenario could hold")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string for the characters we write
    raise TypeError(f"cannot write {type(value).__name__} into a scenario file")


def _time(point: TimePoint) -> str:
    """A share as the shortest percentage that reads back to the same double (0.29 is "29%", not 28.999...)."""
    if not point.fraction:
        return _value(point.value)
    for decimals in range(16):
        text = f"{point.value * 100:.{decimals}f}"
        if float(text) / 100 == point.value:
            return json.dumps(f"{text}%")
    raise ValueError(f"no percentage reads back as {point.value!r}")


def fault_lines(spec: FaultSpec) -> list[str]:
    """One `[[faults]]` table; parameters equal to the kind's default are left out."""
    lines = ["[[faults]]", f"kind = {_value(spec.kind)}", f"start = {_time(spec.start)}", f"stop = {_time(spec.stop)}"]
    declared = FAULT_PARAMS[spec.kind]
    for key, value in spec.params.items():
        if key in declared and declared[key].default == value and type(declared[key].default) is type(value):
            continue
        lines.append(f"{key} = {_value(value)}")
    if spec.fault_id:
        lines.append(f"id = {_value(spec.fault_id)}")
    return lines


def scenario_toml(
    name: str,
    description: str,
    faults: Iterable[FaultSpec],
    expect: Mapping[str, bool | int | float | str],
    speed: float = 1.0,
    seed: int = 1,
) -> str:
    """The text of a scenario file holding `faults`, checked by loading it back (HarnessError if it does not load)."""
    lines = [f"name = {_value(name)}", f"description = {_value(description)}"]
    lines += [f"speed = {_value(float(speed) if speed != int(speed) else int(speed))}", f"seed = {_value(seed)}", ""]
    for spec in faults:
        lines += [*fault_lines(spec), ""]
    lines.append("[expect]")
    lines += [f"{json.dumps(metric)} = {_value(threshold)}" for metric, threshold in expect.items()]
    text = "\n".join(lines) + "\n"
    parse_scenario(text, f"scenario {name!r} as written")
    return text


def round_trip(text: str, faults: Iterable[FaultSpec]) -> Scenario:
    """Loads `text` and checks that it holds exactly `faults`; a difference is our bug (ValueError)."""
    scenario = parse_scenario(text, "written scenario")
    expected = tuple(faults)
    if scenario.faults != expected:
        raise ValueError(f"the written scenario holds {scenario.faults}, not {expected}")
    return scenario
