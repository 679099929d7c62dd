"""The one place that lists scenarios expected to fail, and why.

Tests mark these as strict expected failures: a listed scenario that starts passing fails the
suite until it is taken off this list. Nothing is skipped silently.
"""

from __future__ import annotations

EXPECTED_FAILURES: dict[str, str] = {}
