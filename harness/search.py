"""`harness search`: fault schedules drawn by hypothesis against a subject, the first failure shrunk to a minimum.

A scenario finds the bugs its author imagined; this draws schedules nobody wrote (harness/testing.py),
replays each against the subject for real (the fake venue, the subject in its own process, the checker),
and when one fails, lets hypothesis shrink it to the smallest schedule that still fails. That schedule is
written as a scenario file with its seed, and replayed once more from the file, as `harness replay`
would, to show that it reproduces.

`explore` is the search without replays (a `trial` function in, the minimal failing schedule out), so
its determinism and shrinking are tested at full speed. Hypothesis runs derandomized from the search's
seed, with no example database and its phases named, so the same seed and budget try the same
schedules in the same order on every machine; a trial's verdict is kept by the schedule's text, so a
schedule is replayed at most once in a search. What the subject does with a schedule over real sockets
is as deterministic as docs/scenarios.md ("Determinism") says: with the timing-free faults (the default)
the frames sent are the same every run; where a REST snapshot falls depends on the subject's timing.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.scenario_toml import fault_lines, round_trip, scenario_toml
from harness.subject import check_factory_spec
from harness.testing import TIMING_FREE_KINDS, fault_schedules
from replayer.faults import FAULT_KINDS, FaultSpec, build_schedule

DEFAULT_BUDGET = 50
DEFAULT_SHRINK_BUDGET = 100
TIMING_FREE_SPEED = 10.0
"""The pace for timing-free faults: a 10 s slice in one second, and still a live stream. At speed 0 the
venue streams the whole slice while the subject's first REST snapshot is in flight, so the subject meets
most faults in its pre-sync buffer and shows few books (measured: 6 books judged of a 4 s slice at speed
0, 28 at speed 4)."""
TIMED_SPEED = 4.0
"""The pace when the schedule holds faults that are a span of time (they are not faithful at speed 0)."""


def search_expectations(speed: float) -> dict[str, bool | int]:
    """What every subject must do under any healed schedule: never be silently wrong, and (at a finite
    speed) end with the right book. At speed 0 the stream does not wait for a resync near its end, so a
    correct subject may end unsynced there (docs/scenarios.md, "At speed 0"): only divergence counts."""
    if speed == 0:
        return {"sync.divergent": 0}
    return {"sync.divergent": 0, "sync.final_book_correct": True}


SLICE_SECONDS = 10.0
"""The synthetic recording a search replays when given none: short, so a trial takes about a second."""

Trial = Callable[[list[FaultSpec]], bool]
"""Runs one schedule; True when the subject failed it."""


def schedule_key(schedule: Sequence[FaultSpec]) -> str:
    """The schedule as the `[[faults]]` text it is written as: equal text, equal faults."""
    return "\n".join("\n".join(fault_lines(spec)) for spec in schedule)


@dataclass(slots=True)
class Exploration:
    """What `explore` did: the minimal failing schedule (None if none failed) and the replays it took."""

    minimal: list[FaultSpec] | None = None
    trials: int = 0
    """Schedules run before the first failure, that one included."""
    shrink_trials: int = 0
    """Schedules run while shrinking."""
    first_failure: list[FaultSpec] | None = None
    out_of_time: bool = False
    out_of_shrink_budget: bool = False


class _TrialFailed(Exception):
    pass


class _OutOfTime(Exception):
    pass


def explore(
    trial: Trial,
    strategy: st.SearchStrategy[list[FaultSpec]],
    *,
    seed: int,
    budget: int,
    shrink_budget: int = DEFAULT_SHRINK_BUDGET,
    valid: Callable[[list[FaultSpec]], bool] = lambda schedule: True,
    out_of_time: Callable[[], bool] = lambda: False,
) -> Exploration:
    """Up to `budget` schedules from `strategy`, then up to `shrink_budget` more to shrink the first failure.

    `valid` filters schedules that cannot be planned (not counted); `out_of_time` ends the search: before a
    failure it stops generating, after one it keeps the smallest failure found so far.
    """
    if budget < 1 or shrink_budget < 0:
        raise ValueError(f"budget must be >= 1 and shrink_budget >= 0, not {budget} and {shrink_budget}")
    result = Exploration()
    verdicts: dict[str, bool] = {}
    bad_input: list[HarnessError] = []

    @settings(
        database=None,
        derandomize=True,
        max_examples=budget,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def one(schedule: list[FaultSpec]) -> None:
        if bad_input:
            return  # the user's input is wrong whatever the schedule: let hypothesis finish without replays
        key = schedule_key(schedule)
        if key not in verdicts:
            assume(valid(schedule))
            if result.first_failure is None:
                if out_of_time():
                    raise _OutOfTime
                result.trials += 1
            else:
                if out_of_time():
                    result.out_of_time = True
                    return
                if result.shrink_trials >= shrink_budget:
                    result.out_of_shrink_budget = True
                    return
                result.shrink_trials += 1
            try:
                verdicts[key] = trial(schedule)
            except HarnessError as exc:  # a subject that cannot be imported, a recording that cannot be read
                bad_input.append(exc)
                return
        if verdicts[key]:
            if result.first_failure is None:
                result.first_failure = list(schedule)
            result.minimal = list(schedule)
            raise _TrialFailed

    try:
        one()
    except _TrialFailed:
        pass
    except _OutOfTime:
        result.out_of_time = True
    if bad_input:
        raise bad_input[0]
    if result.minimal is not None:
        _delete_faults(result, trial, verdicts, valid, shrink_budget, out_of_time)
    return result


def _delete_faults(
    result: Exploration,
    trial: Trial,
    verdicts: dict[str, bool],
    valid: Callable[[list[FaultSpec]], bool],
    shrink_budget: int,
    out_of_time: Callable[[], bool],
) -> None:
    """Hypothesis shrinks each fault's draws, but does not always drop a whole fault whose draws come first
    (measured: three snapshot faults kept where one mattered); so try the schedule without each fault in
    turn, keeping any deletion that still fails, until none does. Same budget as the shrinking."""
    assert result.minimal is not None
    shrunk = True
    while shrunk and len(result.minimal) > 1:
        shrunk = False
        for index in range(len(result.minimal)):
            candidate = result.minimal[:index] + result.minimal[index + 1 :]
            key = schedule_key(candidate)
            if key not in verdicts:
                if not valid(candidate):
                    continue
                if result.shrink_trials >= shrink_budget or out_of_time():
                    result.out_of_shrink_budget = result.shrink_trials >= shrink_budget
                    return
                result.shrink_trials += 1
                verdicts[key] = trial(candidate)
            if verdicts[key]:
                result.minimal = candidate
                shrunk = True
                break


@dataclass(slots=True)
class SearchRequest:
    """What `harness search` takes; None: the default (a synthetic slice, 50 schedules, the speed the kinds need)."""

    subject: str
    recording: Path | None = None
    budget: int | None = None
    minutes: float | None = None
    seed: int = 0
    out: Path = Path("search-out")
    kinds: tuple[str, ...] = TIMING_FREE_KINDS
    speed: float | None = None
    max_faults: int = 4
    shrink_budget: int = DEFAULT_SHRINK_BUDGET


@dataclass(slots=True)
class SearchResult:
    """The search's outcome; `scenario_path` and `command` are set when a failure was found."""

    subject: str
    recording: Path
    seed: int
    speed: float
    trials: int
    shrink_trials: int
    faults: tuple[FaultSpec, ...] = ()
    first_failure_faults: int = 0
    scenario_path: Path | None = None
    command: str | None = None
    failed_expectations: list[str] = field(default_factory=list)
    reproduced: bool | None = None
    out_of_time: bool = False
    out_of_shrink_budget: bool = False

    @property
    def found(self) -> bool:
        return self.scenario_path is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "recording": str(self.recording),
            "seed": self.seed,
            "speed": self.speed,
            "trials": self.trials,
            "shrink_trials": self.shrink_trials,
            "found": self.found,
            "faults": [_fault_json(spec) for spec in self.faults],
            "first_failure_faults": self.first_failure_faults,
            "scenario": None if self.scenario_path is None else str(self.scenario_path),
            "reproduce": self.command,
            "failed_expectations": self.failed_expectations,
            "reproduced": self.reproduced,
            "out_of_time": self.out_of_time,
            "out_of_shrink_budget": self.out_of_shrink_budget,
        }


def _fault_json(spec: FaultSpec) -> dict[str, Any]:
    return {"kind": spec.kind, "start": str(spec.start), "stop": str(spec.stop), **spec.params}


def run_search(request: SearchRequest, progress: Callable[[str], None] | None = None) -> SearchResult:
    """Explores schedules against `request.subject` with real replays; writes the minimal failure to `request.out`."""
    from harness.replay import ReplayRequest, run_replay
    from harness.synth.run import write_synthetic_recording
    from replayer.replay_data import load_replay_data

    say = progress or (lambda line: None)
    check_factory_spec(request.subject)
    kinds = _checked_kinds(request.kinds)
    budget, deadline = _limits(request)
    timing_free = set(kinds) <= set(TIMING_FREE_KINDS)
    speed = request.speed if request.speed is not None else (TIMING_FREE_SPEED if timing_free else TIMED_SPEED)
    if speed < 0:
        raise HarnessError(f"speed must be >= 0, not {speed}")
    if request.max_faults < 1:
        raise HarnessError(f"--max-faults must be >= 1, not {request.max_faults}")
    out = request.out
    try:
        (out / "trials").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot create {out}: {exc.strerror or exc}") from None
    recording = request.recording
    if recording is None:
        recording = out / "recording"
        if not recording.exists():
            write_synthetic_recording(recording, "BTCUSDT", seconds=SLICE_SECONDS, seed=1)
    frames = load_replay_data(recording).frames
    name = f"search_seed{request.seed}"

    def valid(schedule: list[FaultSpec]) -> bool:
        try:
            build_schedule(frames, tuple(schedule), request.seed)
        except HarnessError:
            return False
        return True

    def write(schedule: Sequence[FaultSpec], path: Path, description: str) -> None:
        expect = search_expectations(speed)
        text = scenario_toml(name, description, schedule, expect, speed=speed or 1.0, seed=request.seed)
        round_trip(text, schedule)
        path.write_text(text, encoding="utf-8")

    reports: dict[str, dict[str, Any]] = {}

    def replay(path: Path) -> dict[str, Any]:
        asked = ReplayRequest(str(path), recording, seed=request.seed, speed=speed, subject=request.subject)
        return run_replay(asked)

    def trial(schedule: list[FaultSpec]) -> bool:
        key = schedule_key(schedule)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        path = out / "trials" / f"{digest}.toml"
        write(schedule, path, "a schedule tried by harness search")
        report = replay(path)
        failed = not report["passed"] and not replay(path)["passed"]  # a failure counts only if it comes back
        if failed:
            reports[key] = report
        kinds_text = ", ".join(spec.kind for spec in schedule)
        say(f"{'FAIL' if failed else 'pass'}  {len(schedule)} fault(s): {kinds_text}")
        return failed

    strategy = fault_schedules(kinds, request.max_faults, timing_free=timing_free)
    found = explore(
        trial,
        strategy,
        seed=request.seed,
        budget=budget,
        shrink_budget=request.shrink_budget,
        valid=valid,
        out_of_time=(lambda: time.monotonic() > deadline) if deadline is not None else (lambda: False),
    )
    result = SearchResult(
        subject=request.subject,
        recording=recording,
        seed=request.seed,
        speed=speed,
        trials=found.trials,
        shrink_trials=found.shrink_trials,
        out_of_time=found.out_of_time,
        out_of_shrink_budget=found.out_of_shrink_budget,
    )
    if found.minimal is not None:
        minimal = found.minimal
        path = out / f"{name}.toml"
        pace = " Replay it with --speed 0 (a file's speed must be > 0)." if speed == 0 else ""
        write(minimal, path, f"Found by harness search --seed {request.seed} against {request.subject}, shrunk.{pace}")
        report = reports[schedule_key(minimal)]
        result.faults = tuple(minimal)
        result.first_failure_faults = len(found.first_failure or ())
        result.scenario_path = path
        result.failed_expectations = [row["name"] for row in report["expectations"] if row["passed"] is False]
        result.command = shlex.join(_replay_args(path, recording, request.seed, speed, request.subject))
        say(f"shrunk to {len(minimal)} fault(s); replaying {path} once more to check it reproduces")
        again = replay(path)
        result.reproduced = not again["passed"]
        (out / f"{name}.report.json").write_bytes(orjson.dumps(again, option=orjson.OPT_INDENT_2))
    (out / "search.json").write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
    return result


def _replay_args(path: Path, recording: Path, seed: int, speed: float, subject: str) -> list[str]:
    args = ["harness", "replay", "--scenario", str(path), "--recording", str(recording), "--seed", str(seed)]
    args += ["--speed", f"{speed:g}", "--subject", subject]
    return args


def _checked_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        named = repr(unknown[0]) if unknown else "(none)"
        raise HarnessError(f"unknown fault kind {named}; known: {', '.join(FAULT_KINDS)}")
    return tuple(dict.fromkeys(kinds))


def _limits(request: SearchRequest) -> tuple[int, float | None]:
    """(max schedules, monotonic deadline or None): `--budget` and `--minutes` are alternatives."""
    if request.budget is not None and request.minutes is not None:
        raise HarnessError("give --budget or --minutes, not both")
    if request.minutes is not None:
        if not request.minutes > 0:
            raise HarnessError(f"--minutes must be > 0, not {request.minutes}")
        return 10**6, time.monotonic() + request.minutes * 60
    budget = DEFAULT_BUDGET if request.budget is None else request.budget
    if budget < 1:
        raise HarnessError(f"--budget must be >= 1, not {budget}")
    if request.shrink_budget < 0:
        raise HarnessError(f"--shrink-budget must be >= 0, not {request.shrink_budget}")
    return budget, None


def parse_kinds(text: str) -> tuple[str, ...]:
    """`--kinds`: `timing-free` (the default), `all`, or kinds separated by commas."""
    if text == "timing-free":
        return TIMING_FREE_KINDS
    if text == "all":
        return FAULT_KINDS
    return _checked_kinds([part.strip() for part in text.split(",") if part.strip()])
