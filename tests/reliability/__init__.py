"""The reliability report: every requirement of ../shared/RELIABILITY.md shown by a test.

Tests carry `@pytest.mark.requirement("LD-1", ...)` and may record the number they measured
with the `evidence` fixture. plugin.py gathers the outcomes into a table (ID, what was tried,
the number, pass/fail) printed at the end of any run that has such tests; `python -m
tests.reliability` runs just those tests (the quick forms, as in CI) or, with `--long`, the long
forms. LONG is what the tests read to pick their size.
"""

from __future__ import annotations

import os

# Set by `python -m tests.reliability --long`: fuzz for 10 minutes, 20 device losses, ...
LONG = os.environ.get("SANDSEG_RELIABILITY_LONG") == "1"


def quick_or_long[T](quick: T, long: T) -> T:
    """The quick form's size in the test suite, the long form's under `--long`."""
    return long if LONG else quick
