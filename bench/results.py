"""bench/results.json: every bench's figures, each a ratio against its comparison measured in the same run.

A bench calls `put(name, ...)` once per figure; `python -m bench` writes the file when it ends. Figures of
benches that did not run this time are kept as they were (each carries the time it was measured), so
`python -m bench pipeline` refreshes one entry without erasing the others. `docs/performance.md` says
how to read the file.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
_pending: dict[str, dict[str, Any]] = {}


def put(
    name: str,
    *,
    ratio: float,
    meaning: str,
    comparison: str,
    goal: str | None = None,
    met: bool | None = None,
    raw: dict[str, Any] | None = None,
) -> None:
    """Record one figure: `ratio` is ours against `comparison`, `meaning` says which way is better."""
    _pending[name] = {
        "ratio": round(ratio, 4),
        "meaning": meaning,
        "comparison": comparison,
        "goal": goal,
        "met": met,
        "raw": raw or {},
        "measured_at": _now(),
    }


def pending() -> dict[str, dict[str, Any]]:
    return dict(_pending)


def write(path: Path = RESULTS_PATH) -> Path:
    """Merge this run's figures into `path` with the machine they were measured on."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = {}
    figures = previous.get("figures", {}) if isinstance(previous, dict) else {}
    figures.update(_pending)
    document = {"machine": machine(), "written_at": _now(), "figures": dict(sorted(figures.items()))}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def machine() -> dict[str, Any]:
    """What a ratio depends on: the interpreter, the libraries, the CPU and how busy it was."""
    versions: dict[str, str | None] = {}
    for package in ("websockets", "orjson", "pyarrow", "uvloop"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
        "commit": _commit(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
