"""Security rules: servers stay on loopback unless told, scenario files are data, only `--subject` loads code."""

from __future__ import annotations

import ast
import asyncio
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.loopback import exposure_warning, is_loopback
from harness.replay import BUNDLED_FIXTURE
from harness.scenarios import load_scenario, parse_scenario

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "recorder", "replayer")
BUILTIN_LOADERS = {"eval", "exec", "compile", "__import__"}
LOADER_METHODS = {"import_module", "spec_from_file_location", "exec_module", "run_path", "run_module"}
UNSAFE_DECODERS = {"pickle", "marshal", "shelve", "dill", "yaml", "runpy", "importlib"}
SUBJECT_LOADER = REPO / "harness" / "subject.py"


def test_loopback_addresses_are_quiet_and_others_warn() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert is_loopback(host) and exposure_warning(host) is None
    for host in ("0.0.0.0", "::", "", "192.168.1.10", "example.com"):
        assert not is_loopback(host)
        assert "not loopback" in (exposure_warning(host) or "")


async def serve_and_read(*options: str) -> tuple[list[str], str]:
    """Starts `harness serve` with `options`, reads its stdout up to the REST line, then stops it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.cli", "serve", "--recording", str(BUNDLED_FIXTURE), "--port", "0", *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while not lines or not lines[-1].startswith("rest:"):
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, (await proc.stderr.read()).decode()
            lines.append(line)
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    return lines, stderr.decode()


def test_serve_binds_loopback_by_default_and_warns_for_any_other_host() -> None:
    lines, stderr = asyncio.run(serve_and_read())
    assert any(line.startswith("websocket: ws://127.0.0.1:") for line in lines)
    assert "warning" not in stderr
    lines, stderr = asyncio.run(serve_and_read("--host", "0.0.0.0"))
    assert any(line.startswith("websocket: ws://0.0.0.0:") for line in lines)
    assert "warning: listening on 0.0.0.0, not loopback" in stderr


def test_replay_and_record_start_no_listener_off_loopback() -> None:
    """`harness replay` builds its venue on the default host; the recorder opens no listening socket."""
    replay = ast.parse((REPO / "harness" / "replay.py").read_text())
    venue_calls = [
        node for node in ast.walk(replay)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "VenueServer"
    ]  # fmt: skip
    assert venue_calls and all(k.arg != "host" for call in venue_calls for k in call.keywords)
    listeners = {"serve", "start_server", "create_server", "bind", "listen"}
    for path in (REPO / "recorder").glob("*.py"):
        calls = {
            getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call)
        }
        assert not calls & listeners, path


def test_scenario_files_are_data_a_payload_in_one_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    attacks = [
        'name = "x"\ndescription = "d"\nspeed = 1\nseed = 1\n__import__ = "os"\n[expect]\n"sync.divergent" = 0\n',
        f"name = \"__import__('os').system('touch {marker}')\"\ndescription = \"d\"\nspeed = 1\nseed = 1\n"
        '[expect]\n"sync.divergent" = 0\n',
        f'name = "x"\ndescription = "d"\nspeed = "__import__(\'os\').system(\'touch {marker}\')"\nseed = 1\n'
        '[expect]\n"sync.divergent" = 0\n',
        'name = "x"\ndescription = "d"\nspeed = 1\nseed = 1\n[[faults]]\nkind = "exec"\n'
        '[expect]\n"sync.divergent" = 0\n',
        'name = "x"\ndescription = "d"\nspeed = 1\nseed = 1\n'
        f"[expect]\n\"sync.divergent\" = \"== __import__('os').system('touch {marker}')\"\n",
    ]
    for text in attacks:
        path = tmp_path / "attack.toml"
        path.write_text(text)
        with pytest.raises(HarnessError) as info:
            load_scenario(path)
        assert "\n" not in str(info.value)
    assert not marker.exists()
    # A description that looks like code is just a description.
    loaded = parse_scenario(
        'name = "x"\ndescription = "__import__(\'os\')"\nspeed = 1\nseed = 1\n[expect]\n"sync.divergent" = 0\n', "t"
    )
    assert loaded.description == "__import__('os')"


def _code_loading_sites(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            builtin = isinstance(func, ast.Name) and func.id in BUILTIN_LOADERS
            if builtin or (isinstance(func, ast.Attribute) and func.attr in LOADER_METHODS):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(func)}()")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path.name}:{node.lineno} import {m}" for m in modules if m.split(".")[0] in UNSAFE_DECODERS]
    return found


def test_only_the_subject_loader_turns_input_into_code() -> None:
    """No module evaluates, unpickles or imports by name except harness/subject.py (`--subject`)."""
    sites = {
        path: _code_loading_sites(path)
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }  # fmt: skip
    offenders = {str(p.relative_to(REPO)): s for p, s in sites.items() if s and p != SUBJECT_LOADER}
    assert offenders == {}
    assert sites[SUBJECT_LOADER], "the subject loader is where code is loaded; this test must see it"
    scenarios = ast.parse((REPO / "harness" / "scenarios.py").read_text())
    imported = {a.name for n in ast.walk(scenarios) if isinstance(n, ast.Import) for a in n.names}
    assert "tomllib" in imported
