"""The pytest plugin (entry point `pytest11`): replays and fake venues as fixtures, scenarios as a marker.

Installed with the harness, so pytest loads it in every session of every project in the environment,
this repository's own included. It therefore imports nothing of the harness until a test asks for
one of its fixtures or carries its marker: registering an option, two ini keys and a marker is all
it does otherwise. docs/api.md describes the fixtures.

- `@pytest.mark.scenario("gap_storm", "clean", seed=[1, 2, 3], recording=...)` runs the test once per
  scenario and seed (default: the scenario's own seed); `--harness-seed N` runs every marked test
  with seed N only, to rerun the one that failed.
- `harness_replay(subject, scenario=..., seed=...)` runs `harness replay` in-process and returns the
  report; without a scenario it takes the marker's. A test that fails after it prints the command
  that reproduces each replay it ran.
- `fake_venue(scenario, seed=...)` starts a FakeVenue (harness/fake_venue.py) for a test that drives
  its client itself, and stops it after the test.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.fake_venue import FakeVenue
    from harness.search import SearchResult

MARKER = "scenario"
_REPRODUCE = pytest.StashKey[list[str]]()


@dataclass(frozen=True, slots=True)
class ScenarioCase:
    """One parametrization of a marked test; `recording` None means the ini's or the bundled one."""

    scenario: str
    seed: int
    recording: str | None = None

    @property
    def id(self) -> str:
        return f"{Path(self.scenario).stem}-seed{self.seed}"


class ReplayReport(dict):
    """The report dict of docs/report-schema.md, whose repr is one line (a failed `assert report["passed"]`
    shows the verdict instead of a page of JSON); `reproduce` is the command that runs it again."""

    def __init__(self, report: dict[str, Any], reproduce: str) -> None:
        super().__init__(report)
        self.reproduce = reproduce

    @property
    def failed_expectations(self) -> list[str]:
        return [f"{row['name']} (got {row['value']!r})" for row in self["expectations"] if row["passed"] is False]

    def __repr__(self) -> str:
        verdict = "PASS" if self["passed"] else "FAIL: " + "; ".join(self.failed_expectations)
        return f"<replay {self['scenario']} seed {self['seed']} {verdict}>"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "market-data replay harness")
    group.addoption(
        "--harness-seed",
        type=int,
        default=None,
        metavar="SEED",
        help="run tests marked @pytest.mark.scenario with this seed only (to rerun a failing one)",
    )
    parser.addini("harness_recording", "recording folder for harness_replay and fake_venue (default: bundled)")
    parser.addini("harness_subject", "subject factory module:function for harness_replay (default: the harness's)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name, ..., seed=None, recording=None): run the test once per scenario and seed "
        "(an int or a list; default the scenario's own); harness_replay and fake_venue default to them",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    markers = list(metafunc.definition.iter_markers(MARKER))
    if not markers:
        return
    if "harness_scenario" not in metafunc.fixturenames:
        pytest.fail(
            f"{metafunc.definition.nodeid}: @pytest.mark.{MARKER} needs the test to use harness_replay, "
            "fake_venue or harness_scenario",
            pytrace=False,
        )
    forced = metafunc.config.getoption("harness_seed")
    cases: dict[str, ScenarioCase] = {}
    for marker in markers:
        for case in _cases(marker, forced):
            cases.setdefault(case.id, case)
    metafunc.parametrize("harness_scenario", list(cases.values()), ids=list(cases), indirect=True)


def _cases(marker: pytest.Mark, forced: int | None) -> list[ScenarioCase]:
    if not marker.args or not all(isinstance(name, str | Path) for name in marker.args):
        pytest.fail(f"@pytest.mark.{MARKER} takes scenario names or files, got {marker.args!r}", pytrace=False)
    unknown = set(marker.kwargs) - {"seed", "recording"}
    if unknown:
        pytest.fail(f"@pytest.mark.{MARKER}: unknown keyword {sorted(unknown)[0]!r} (seed, recording)", pytrace=False)
    seeds = marker.kwargs.get("seed")
    recording = marker.kwargs.get("recording")
    cases = []
    for name in marker.args:
        if forced is not None:
            chosen = [forced]
        elif seeds is None:
            chosen = [_default_seed(str(name))]
        else:
            chosen = [seeds] if isinstance(seeds, int) else list(seeds)
        cases += [ScenarioCase(str(name), seed, None if recording is None else str(recording)) for seed in chosen]
    return cases


def _default_seed(name: str) -> int:
    from harness.errors import HarnessError
    from harness.scenarios import load_scenario

    try:
        return load_scenario(name).seed
    except HarnessError as exc:
        pytest.fail(f"@pytest.mark.{MARKER}: {exc}", pytrace=False)


@pytest.fixture
def harness_scenario(request: pytest.FixtureRequest) -> ScenarioCase | None:
    """The marker's (scenario, seed) for this run of the test, or None for an unmarked test."""
    return getattr(request, "param", None)


@pytest.fixture
def harness_replay(
    request: pytest.FixtureRequest, harness_scenario: ScenarioCase | None
) -> Callable[..., ReplayReport]:
    """`harness_replay(subject=None, *, scenario=None, seed=None, recording=None, speed=None,
    rest_weight_limit=None)` -> report (None: the harness's defaults, the recording's venue's weight limit).

    Runs one replay in this process and returns its report; call it from a synchronous test.
    """
    commands = request.node.stash.setdefault(_REPRODUCE, [])

    def run(
        subject: str | None = None,
        *,
        scenario: str | Path | None = None,
        seed: int | None = None,
        recording: str | Path | None = None,
        speed: float | None = None,
        rest_weight_limit: int | None = None,
    ) -> ReplayReport:
        from harness.replay import ReplayRequest, run_replay
        from harness.subject import DEFAULT_SUBJECT

        scenario, seed, recording = _resolve(request.config, harness_scenario, scenario, seed, recording)
        subject = subject or request.config.getini("harness_subject") or DEFAULT_SUBJECT
        args = _replay_args(scenario, seed, recording, speed, rest_weight_limit)
        if subject != DEFAULT_SUBJECT:
            args += ["--subject", subject]
        command = shlex.join(["harness", "replay", *args])
        commands.append(command)
        req = ReplayRequest(
            scenario=str(scenario),
            recording=None if recording is None else Path(recording),
            seed=seed,
            speed=speed,
            subject=subject,
            rest_weight_limit=rest_weight_limit,
        )
        return ReplayReport(run_replay(req), command)

    return run


@pytest.fixture
def fake_venue(
    request: pytest.FixtureRequest, harness_scenario: ScenarioCase | None
) -> Iterator[Callable[..., FakeVenue]]:
    """`fake_venue(scenario=None, *, seed=None, recording=None, speed=None, rest_weight_limit=None)` -> a
    started FakeVenue.

    Every venue it started is stopped after the test.
    """
    started: list[FakeVenue] = []
    commands = request.node.stash.setdefault(_REPRODUCE, [])

    def start(
        scenario: str | Path | None = None,
        *,
        seed: int | None = None,
        recording: str | Path | None = None,
        speed: float | None = None,
        rest_weight_limit: int | None = None,
    ) -> FakeVenue:
        from harness.fake_venue import FakeVenue

        scenario, seed, recording = _resolve(request.config, harness_scenario, scenario, seed, recording)
        venue = FakeVenue(scenario, recording=recording, seed=seed, speed=speed, rest_weight_limit=rest_weight_limit)
        args = _replay_args(scenario, venue.seed, venue.recording, speed, rest_weight_limit)
        commands.append("the same venue, for any client: " + shlex.join(["harness", "serve", *args]))
        started.append(venue.start())
        return venue

    yield start
    for venue in started:
        venue.stop()


@pytest.fixture
def harness_search(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., SearchResult]:
    """`harness_search(subject=None, *, recording=None, budget=None, minutes=None, seed=0, kinds=None,
    max_faults=4, shrink_budget=100)` -> SearchResult (docs/search.md), written under the test's tmp_path.

    A test that fails after it prints the `harness replay` command of the schedule it found.
    """
    commands = request.node.stash.setdefault(_REPRODUCE, [])

    def run(
        subject: str | None = None,
        *,
        recording: str | Path | None = None,
        budget: int | None = None,
        minutes: float | None = None,
        seed: int = 0,
        kinds: tuple[str, ...] | None = None,
        max_faults: int = 4,
        shrink_budget: int = 100,
    ) -> SearchResult:
        from harness.search import SearchRequest, run_search
        from harness.subject import DEFAULT_SUBJECT
        from harness.testing import TIMING_FREE_KINDS

        if recording is None and request.config.getini("harness_recording"):
            recording = Path(request.config.rootpath, request.config.getini("harness_recording"))
        asked = SearchRequest(
            subject=subject or request.config.getini("harness_subject") or DEFAULT_SUBJECT,
            recording=None if recording is None else Path(recording),
            budget=budget,
            minutes=minutes,
            seed=seed,
            out=tmp_path / f"search-seed{seed}",
            kinds=kinds or TIMING_FREE_KINDS,
            max_faults=max_faults,
            shrink_budget=shrink_budget,
        )
        result = run_search(asked)
        if result.command:
            commands.append(result.command)
        return result

    return run


def _resolve(
    config: pytest.Config,
    case: ScenarioCase | None,
    scenario: str | Path | None,
    seed: int | None,
    recording: str | Path | None,
) -> tuple[str | Path, int | None, str | Path | None]:
    """Explicit arguments first, then the marker's case, then --harness-seed and the ini's recording."""
    if scenario is None:
        if case is None:
            raise TypeError("give scenario=..., or mark the test with @pytest.mark.scenario(name)")
        scenario = case.scenario
    if seed is None:
        seed = case.seed if case is not None and str(case.scenario) == str(scenario) else None
        seed = config.getoption("harness_seed") if seed is None else seed
    if recording is None:
        recording = case.recording if case is not None and case.recording else None
    if recording is None and config.getini("harness_recording"):
        recording = Path(config.rootpath, config.getini("harness_recording"))
    return scenario, seed, recording


def _replay_args(
    scenario: str | Path,
    seed: int | None,
    recording: str | Path | None,
    speed: float | None,
    rest_weight_limit: int | None,
) -> list[str]:
    """The options `harness replay` and `harness serve` share, for the command a failure prints."""
    args = ["--scenario", str(scenario)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if recording is not None:
        args += ["--recording", str(recording)]
    if speed is not None:
        args += ["--speed", f"{speed:g}"]
    if rest_weight_limit is not None:
        args += ["--rest-weight-limit", str(rest_weight_limit)]
    return args


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    """A failed test that ran replays or venues says how to run each again, under its failure."""
    outcome = yield
    report = outcome.get_result()
    commands = item.stash.get(_REPRODUCE, None)
    if report.failed and commands:
        case = item.funcargs.get("harness_scenario") if hasattr(item, "funcargs") else None
        lines = list(commands)
        if isinstance(case, ScenarioCase):
            lines.append(f"pytest {shlex.quote(item.nodeid)}  (or any marked test: --harness-seed {case.seed})")
        report.sections.append(("harness: reproduce", "\n".join(lines)))
