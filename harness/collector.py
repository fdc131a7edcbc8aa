"""The garbage collector in a process the harness owns, once a recording is loaded and before it is served.

CPython's full collection walks every tracked object the process holds. After `harness replay` has
loaded a recording and built its judge that is a great many, all of them alive until the run ends, and
one full collection while the venue paced at 10,000 frames/s stopped it for 45 to 88 ms (measured with
`gc.callbacks` on `harness replay --speed 1` of the pacing bench's recording: one such pause per run,
none with this; docs/performance.md, "Pacing"). `gc.freeze()` moves them to the permanent generation:
later collections walk only what serving made, so they stay short, and the objects themselves are
freed as usual when their last reference goes.

Only for a process that is the harness's own (the command line's `harness replay`, `harness serve`, the
subject host): in a caller's process (the pytest plugin, `harness.api.run_replay`) a freeze would also
keep the caller's own cyclic garbage of that moment for the rest of its life.
"""

from __future__ import annotations

import gc


def freeze_loaded() -> None:
    """Collects what is garbage now, then takes everything still alive out of later collections."""
    gc.collect()
    gc.freeze()
