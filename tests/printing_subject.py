"""A correct subject that prints to stdout, as debugging users and chatty libraries do.

Importable as `tests.printing_subject:create` from the repository root (the subject process runs
there). It writes through Python's `print` and straight to file descriptor 1, so both paths a
library might take are covered.
"""

from __future__ import annotations

import os

from harness.default_subject import DefaultSubject
from harness.subject import SubjectConfig


class PrintingSubject(DefaultSubject):
    def _on_message(self, payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        print(f"received {len(payload)} bytes on connection {conn_id}")
        os.write(1, b"{not a report line\n")
        super()._on_message(payload, recv_mono_ns, recv_wall_ns, conn_id)


def create(config: SubjectConfig) -> DefaultSubject:
    return PrintingSubject(config)
