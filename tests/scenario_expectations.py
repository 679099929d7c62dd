"""The one place that lists scenarios expected to fail, and why.

Tests mark these as strict expected failures: a listed scenario that starts passing fails the
suite until it is taken off this list. Nothing is skipped silently.
"""

from __future__ import annotations

_NEEDS_ISSUE_5 = "waits, events, human tasks and cancel arrive with the waits issue (#5)"

EXPECTED_FAILURES: dict[str, str] = {
    "time-wait": _NEEDS_ISSUE_5,
    "event-wait-correlated": _NEEDS_ISSUE_5,
    "event-wait-timeout-caught": _NEEDS_ISSUE_5,
    "human-task-validated": _NEEDS_ISSUE_5,
    "cancel-during-wait": _NEEDS_ISSUE_5,
}
