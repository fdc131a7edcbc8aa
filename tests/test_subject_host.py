"""harness/subject_host.py's report channel: a pipe deep enough that the subject does not wait on the harness."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.subject_host import REPORT_PIPE_BYTES, deepen_pipe


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe depth is set with a Linux fcntl")
def test_a_pipe_is_made_as_deep_as_asked() -> None:
    import fcntl

    read_end, write_end = os.pipe()
    try:
        before = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
        assert deepen_pipe(write_end)
        assert fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) == REPORT_PIPE_BYTES > before
    finally:
        os.close(read_end)
        os.close(write_end)


def test_what_is_not_a_pipe_is_left_as_it_is(tmp_path: Path) -> None:
    with open(tmp_path / "reports.jsonl", "wb") as file:
        assert not deepen_pipe(file.fileno())
