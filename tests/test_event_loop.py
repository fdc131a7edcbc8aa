"""harness/event_loop.py: uvloop when installed and not ruled out, asyncio's own loop otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest

from harness import event_loop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.loop_factory() is None
    assert event_loop.run(_loop_type()).startswith("asyncio")


def test_without_uvloop_the_default_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` raise ImportError
    assert event_loop.loop_factory() is None
    assert event_loop.run(_loop_type()).startswith("asyncio")


def test_uvloop_is_used_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv(event_loop.ENV, raising=False)
    assert event_loop.loop_factory() is uvloop.new_event_loop
    assert event_loop.run(_loop_type()).startswith("uvloop")
