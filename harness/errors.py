"""The one exception type that means "the user asked for something we cannot do".

The CLI prints its message as a single `error: ...` line and exits 2; every other exception is a
bug in the harness and keeps its traceback.
"""


class HarnessError(Exception):
    """A user mistake or bad input, explained in one line."""
