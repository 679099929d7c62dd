"""Deterministic budgets of one expression evaluation.

Every evaluation gets a fresh :class:`Budget`. The bounded evaluator (``_bounded``) charges it as
it goes; exceeding a bound raises :class:`BudgetExceeded`, which the engine turns into a catchable
``ExpressionError``. What is counted depends only on the expression and its input, never on time,
so a replay stops at exactly the same point.

The exceptions derive from ``BaseException`` on purpose: jsonata-python's ``$eval`` (and a few
other places) turn *any* ``Exception`` into their own error code, which would hide a budget
error (and make the non-deterministic wall-clock guard catchable).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final

from jsonata.utils import Utils

__all__ = [
    "CHARS_PER_STEP",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_TIMEOUT_MS",
    "ITEMS_PER_STEP",
    "Budget",
    "BudgetExceeded",
    "ExpressionRefused",
    "WallClockExceeded",
    "active_budget",
    "deep_size",
    "finish_result",
]

#: Evaluation steps (calls of jsonata-python's ``eval``: one per node of the expression per input
#: item it is applied to) of one evaluation.
DEFAULT_MAX_STEPS: Final = 100_000
#: Nesting of evaluation steps (recursion of the evaluator, which grows with function recursion).
DEFAULT_MAX_DEPTH: Final = 500
#: Size units one evaluation may build: one per character of a built string, one per item of a
#: built array or object (including the sequences that path steps build).
DEFAULT_MAX_SIZE: Final = 1_000_000
#: Work on existing data (a built-in function reading its arguments, ``=``/``in`` comparing
#: values) counts as evaluation steps: one step per this many array items or object members
#: (jsonata-python checks a function's signature item by item, about 1 µs an item)...
ITEMS_PER_STEP: Final = 2
#: ... and one per this many characters (string functions run in C, about 1 ns a character).
CHARS_PER_STEP: Final = 1000
#: Wall-clock backstop (non-deterministic, fails the workflow task): below Temporal's 2 s
#: deadlock detector, far above what the deterministic budgets allow.
DEFAULT_TIMEOUT_MS: Final = 1_500

#: The wall clock is read every this many steps (a power of two minus one, used as a mask).
_CLOCK_MASK: Final = 1023

_local = threading.local()


def active_budget() -> Budget | None:
    """The budget of the evaluation running on this thread, if any."""
    return getattr(_local, "budget", None)


class BudgetExceeded(BaseException):
    """An evaluation went over one of its deterministic bounds."""

    def __init__(self, bound: str, limit: int, what: str) -> None:
        """Name the bound.

        Args:
            bound: ``steps``, ``depth`` or ``size``.
            limit: The bound's value.
            what: What was being done, for the message.
        """
        super().__init__(bound, limit, what)
        self.bound = bound
        self.limit = limit
        self.what = what


class ExpressionRefused(ValueError):
    """An argument the runtime refuses before calling a function with it (a catchable error)."""

    def __init__(self, code: str, message: str) -> None:
        """Describe the refusal; ``code`` becomes the ExpressionError's code."""
        super().__init__(message)
        self.code = code


class WallClockExceeded(BaseException):
    """The non-deterministic wall-clock backstop fired."""


class Budget:
    """Counters and limits of one evaluation."""

    __slots__ = ("_previous", "deadline", "depth", "max_depth", "max_size", "max_steps", "size", "steps", "timeout_ms")

    def __init__(self, max_steps: int, max_depth: int, max_size: int, timeout_ms: int) -> None:
        """Start counting from zero; the wall clock starts now."""
        self.steps = 0
        self.depth = 0
        self.size = 0
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.max_size = max_size
        self.timeout_ms = timeout_ms
        # CPU time of this thread, not wall time: many workflow tasks evaluate at once in their
        # threads and share one interpreter lock, so under load an expression waits far longer
        # than it works; only its own work says it ran away (which the budgets prevent).
        self.deadline = time.thread_time() + timeout_ms / 1000
        self._previous: Budget | None = None

    def __enter__(self) -> Budget:
        self._previous = getattr(_local, "budget", None)
        _local.budget = self
        return self

    def __exit__(self, *exc: object) -> None:
        _local.budget = self._previous

    def charge(self, units: int, what: str) -> None:
        """Count ``units`` of size; raise when the size budget is exhausted."""
        self.size += units
        if self.size > self.max_size:
            raise BudgetExceeded("size", self.max_size, what)

    def remaining(self) -> int:
        """Size units still available (at least 0)."""
        return max(0, self.max_size - self.size)

    def charge_steps(self, steps: int, what: str) -> None:
        """Count ``steps`` evaluation steps at once (work that is not a call of ``eval``)."""
        self.steps += steps
        if self.steps > self.max_steps:
            raise BudgetExceeded("steps", self.max_steps, what)

    def work(self, items: int, chars: int, what: str) -> None:
        """Count work on existing data as steps (:data:`ITEMS_PER_STEP`, :data:`CHARS_PER_STEP`)."""
        self.charge_steps(-(-items // ITEMS_PER_STEP) - (-chars // CHARS_PER_STEP), what)

    def remaining_items(self) -> int:
        """Items of work still available within the step budget (a limit for bounded walks)."""
        return max(0, self.max_steps - self.steps) * ITEMS_PER_STEP

    def check_clock(self) -> None:
        """Raise :class:`WallClockExceeded` when the evaluation used more CPU time than the backstop allows."""
        if time.thread_time() > self.deadline:
            raise WallClockExceeded()


def deep_size(value: Any, limit: int) -> int:
    """Size units of ``value``: string characters plus array items and object members (with key
    characters), counted along every path. Stops counting once over ``limit`` (the result is then
    just some number above ``limit``), so the walk itself is bounded.
    """
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, dict)):
        return 1
    total = 0
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        total += len(node)
        if total > limit:
            return total
        if isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str):
                    total += len(key)
                if isinstance(item, str):
                    total += len(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        else:
            for item in node:
                if isinstance(item, str):
                    total += len(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        if total > limit:
            return total
    return total


def finish_result(result: Any, budget: Budget) -> Any:
    """Convert JSONata nulls to ``None`` (what jsonata-python's output conversion does) while
    counting the result's array items and object members along every path.

    An evaluation can build a value that shares one array many times over (``[$a, $a]``
    repeated): small in memory, but every later copy or serialisation expands it. Counting along
    paths charges what the expanded value would cost; strings are not counted again (they were
    counted when built, or came from the input).
    """
    null = Utils.NULL_VALUE
    if result is null:
        return None
    if not isinstance(result, (list, dict)):
        return result
    # (counted in a local and written back: the same counts and the same error as charging each
    # node through Budget.charge, about twice as fast on results of many small objects)
    size = budget.size
    limit = budget.max_size
    range_list = Utils.RangeList
    stack: list[Any] = [result]
    pop = stack.pop
    push = stack.append
    try:
        while stack:
            node = pop()
            size += len(node)
            if size > limit:
                raise BudgetExceeded("size", limit, "the expression's result")
            if isinstance(node, dict):
                for key, item in node.items():
                    if item is null:
                        node[key] = None
                    elif isinstance(item, (list, dict)):
                        push(item)
            elif isinstance(node, range_list):
                continue  # lazily generated integers: nothing to convert
            else:
                for index, item in enumerate(node):
                    if item is null:
                        node[index] = None
                    elif isinstance(item, (list, dict)):
                        push(item)
    finally:
        budget.size = size
    return result
