"""The suite's matrix: which (scenario, recording, seed) cells run, and which of them a shard takes.

Pure: names, seeds and speeds in, cells out. A cell is known across machines by its key
(`scenario/recording-folder-name/seedN`), never by a path, so a baseline made on a laptop matches the
same cell on a CI runner whose checkout lives elsewhere. Sharding deals the sorted matrix out round
robin, so every runner of a CI matrix computes the same split without talking to the others, and the
seeds of one scenario land on different runners (the shards stay about equally long).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.errors import HarnessError

MAX_SEEDS = 10_000
"""A guard against a typo such as `1-100000` turning into a day of CI."""

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True, order=True)
class SuiteCell:
    """One replay of the matrix. Ordered and compared by (scenario, recording_name, seed) only.

    `scenario_source` is what `load_scenario` takes (a library name or a file path); `recording` the
    path as the user gave it, None for the bundled fixture; `speed` the scenario's, used to start the
    longest cells first.
    """

    scenario: str
    recording_name: str
    seed: int
    scenario_source: str = field(compare=False)
    recording: str | None = field(compare=False)
    speed: float = field(compare=False)

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.recording_name}/seed{self.seed}"


@dataclass(frozen=True, slots=True)
class ScenarioChoice:
    """A scenario as the matrix needs it: where it was loaded from, its name, default seed and speed."""

    source: str
    name: str
    seed: int
    speed: float


@dataclass(frozen=True, slots=True)
class RecordingChoice:
    """A recording folder: the path given (None for the bundled fixture) and the name cells are keyed by."""

    path: str | None
    name: str


def parse_seeds(text: str) -> list[int]:
    """`1-20`, `3` or `1,4,7-9` as sorted distinct seeds; anything else is one error line."""
    seeds: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise HarnessError(f"--seeds {text!r}: expected a seed or a range such as 1-20, comma-separated")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise HarnessError(f"--seeds {text!r}: range {low}-{high} runs backwards")
        if high - low + 1 + len(seeds) > MAX_SEEDS:
            raise HarnessError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds")
        seeds.update(range(low, high + 1))
    return sorted(seeds)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based, 1 <= I <= N) as (I, N)."""
    match = _SHARD.match(text)
    if match is None:
        raise HarnessError(f"--shard {text!r}: expected I/N, such as 2/4")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise HarnessError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def build_matrix(
    scenarios: Sequence[ScenarioChoice],
    recordings: Sequence[RecordingChoice],
    seeds: Sequence[int] | None,
) -> list[SuiteCell]:
    """Every scenario x recording x seed, sorted; without `seeds`, each scenario's own default seed."""
    _refuse_duplicates((s.name for s in scenarios), "scenario", "scenarios are told apart by their `name`")
    _refuse_duplicates((r.name for r in recordings), "recording", "cells are keyed by the recording's folder name")
    cells = [
        SuiteCell(scenario.name, recording.name, seed, scenario.source, recording.path, scenario.speed)
        for scenario in scenarios
        for recording in recordings
        for seed in (seeds if seeds is not None else (scenario.seed,))
    ]
    return sorted(cells)


def shard_of(cells: Sequence[SuiteCell], index: int, count: int) -> list[SuiteCell]:
    """Shard `index` of `count` (1-based): every count-th cell of the sorted matrix, from the index-th on."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: index must be between 1 and count")
    return sorted(cells)[index - 1 :: count]


def longest_first(cells: Iterable[SuiteCell]) -> list[SuiteCell]:
    """Start order for a pool: the slowest-paced scenarios first, so no long cell is left for the end."""
    return sorted(cells, key=lambda cell: (cell.speed, cell))


def _refuse_duplicates(names: Iterable[str], what: str, why: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise HarnessError(f"two {what}s are both named {name!r}; {why}")
        seen.add(name)
