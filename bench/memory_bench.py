"""Memory of `harness replay --speed 0` in `make bench`: bench/replay_memory.py at its default size
(synths of 100,000 and 200,000 frames at a busy symbol's rate, each replayed twice in its own process
with the harness's and the subject's RSS sampled every 50 ms), writing `memory_harness_flatness` and
`memory_subject_flatness`. Issue 12's goal is on 10 million frames (peak <= 500 MB in the harness,
<= 300 MB in the default subject, flat); a figure's `met` says whether this run met it at its own
size, which `raw.frames` gives.
"""

from __future__ import annotations

from bench import replay_memory
from bench.synths import BUSY_RATE


def main() -> int:
    halves, fulls = replay_memory.measure(replay_memory.FRAMES, BUSY_RATE)
    replay_memory.put_figures(halves, fulls, BUSY_RATE)
    return 0 if all(run.exit_code == 0 for run in halves + fulls) else 1
