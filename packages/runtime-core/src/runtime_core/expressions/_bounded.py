"""A jsonata-python evaluator that charges a deterministic :class:`~._bounds.Budget` as it works.

How the budget reaches the evaluator (jsonata-python 0.7.1), all checked by
``tests/test_expression_bounds.py`` and the JSONata suite (``tests/test_jsonata_suite.py``):

* :class:`BoundedJsonata` subclasses ``jsonata.Jsonata``. Its ``eval`` (called once per node of the
  expression per item it is applied to, which is how jsonata-python's own ``Timebox`` counts)
  counts steps and nesting depth and reads the wall clock every 1,024 steps; it replaces the
  ``__evaluate_entry``/``__evaluate_exit`` callbacks, which cost two Python calls per step.
  Other overrides charge the size of what a step builds: ranges (before they exist), ``&``,
  path steps, array and object constructors, ``=``/``in`` on arrays and objects, ``*`` and ``**``.
* Every built-in function is bound, in each compiled expression's own environment (the built-ins
  of the shared static frame stay untouched), to a :class:`_Guarded` copy that charges the length
  of its string/array arguments and of its result, plus a per-function check *before* the call
  where one call could build a huge value (``$pad``, ``$join``, ``$string``, ``$clone``,
  ``$fromMillis`` widths, ``$eval`` source). Five are replaced by equivalents that are
  deterministic or linear: ``$shuffle`` (workflow random), ``$distinct`` (hashing instead of a
  quadratic scan), ``$replace`` (no quadratic copying, ``limit`` loop stops at a fixpoint),
  ``$formatNumber`` (refuses multi-character separators, which jsonata-python pastes into a
  regular expression unescaped).
* Two module-level patches, inert unless a budget is active on the calling thread:
  ``Functions.append`` (jsonata-python's internal concatenation, quadratic inside loops) charges
  the length of what it returns, and ``jsonata.datetimeutils`` compiles the regular expression it
  builds from a ``$toMillis`` picture with RE2 (the picture's literal text is pasted in
  unescaped, so a picture could be a catastrophic pattern).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonata import datetimeutils, functions, jexception, utils
from jsonata.jsonata import Jsonata

from runtime_core.expressions import _clock
from runtime_core.expressions._bounds import Budget, BudgetExceeded, ExpressionRefused, active_budget, deep_size
from runtime_core.expressions._regex import Re2Pattern, compile_re2, re2_engine

__all__ = ["GUARDED_FUNCTIONS", "BoundedJsonata"]

Functions = functions.Functions
JList = utils.Utils.JList
_NULL = utils.Utils.NULL_VALUE

#: Evaluation steps charged per character of a ``$eval`` source (parsing costs about as much per
#: character as three or four evaluation steps).
EVAL_STEPS_PER_CHAR = 4


class BoundedJsonata(Jsonata):  # type: ignore[misc]
    """A compiled expression whose evaluation charges :attr:`budget`."""

    budget: Budget

    def __init__(self, source: str) -> None:
        """Parse ``source`` with RE2 regex literals and bind the guarded built-ins."""
        super().__init__(source, re2_engine)
        self.environment.bindings.update(GUARDED_FUNCTIONS)

    # ------------------------------------------------------------------ steps, depth, clock

    def eval(self, expr: Any, input: Any, environment: Any) -> Any:
        """Count a step, then do what ``Jsonata.eval`` does (inlined: one Python call less)."""
        budget = self.budget
        budget.steps += 1
        if budget.steps > budget.max_steps:
            raise BudgetExceeded("steps", budget.max_steps, "evaluating")
        if not budget.steps & 1023:
            budget.check_clock()
        budget.depth += 1
        if budget.depth > budget.max_depth:
            budget.depth -= 1
            raise BudgetExceeded("depth", budget.max_depth, "nesting evaluation (recursion)")
        this = Jsonata.CURRENT.jsonata
        saved_input = this.input
        saved_environment = this.environment
        try:
            return this._eval(expr, input, environment)
        finally:
            this.input = saved_input
            this.environment = saved_environment
            budget.depth -= 1

    # ------------------------------------------------------------------ size of what steps build

    def evaluate_range_expression(self, lhs: Any, rhs: Any) -> Any:
        """``[a..b]``: charged before the range exists."""
        if isinstance(lhs, int) and isinstance(rhs, int) and not isinstance(lhs, bool) and not isinstance(rhs, bool) and 0 <= rhs - lhs < 1e7:
            # (jsonata-python refuses 1e7 items or more itself, with D2014)
            self.budget.charge(rhs - lhs + 1, f"the range [{lhs}..{rhs}]")
        return super().evaluate_range_expression(lhs, rhs)

    def evaluate_string_concat(self, lhs: Any, rhs: Any) -> str:
        """``&``: operands turned into strings (charged like ``$string``), then the result."""
        budget = self.budget
        lstr = ""
        rstr = ""
        if lhs is not None:
            if not isinstance(lhs, str):
                budget.charge(deep_size(lhs, budget.remaining()), "turning an operand of & into a string")
            lstr = Functions.string(lhs, None)
        if rhs is not None:
            if not isinstance(rhs, str):
                budget.charge(deep_size(rhs, budget.remaining()), "turning an operand of & into a string")
            rstr = Functions.string(rhs, None)
        if isinstance(lstr, str) and isinstance(rstr, str):
            budget.charge(len(lstr) + len(rstr), "a string built by &")
        return lstr + rstr

    def evaluate_step(self, expr: Any, input: Any, environment: Any, last_step: bool) -> Any:
        """A path step: the sequence it builds."""
        result = super().evaluate_step(expr, input, environment, last_step)
        if isinstance(result, list):
            self.budget.charge(len(result), "the items of a path step")
        return result

    def evaluate_unary(self, expr: Any, input: Any, environment: Any) -> Any:
        """``[...]`` array constructors: the array they build (``{...}`` is charged below)."""
        result = super().evaluate_unary(expr, input, environment)
        if isinstance(result, list):
            self.budget.charge(len(result), "an array constructor")
        return result

    def evaluate_group_expression(self, expr: Any, input: Any, environment: Any) -> Any:
        """``{...}`` object constructors and grouping: the members they build."""
        result = super().evaluate_group_expression(expr, input, environment)
        if isinstance(result, dict):
            self.budget.charge(len(result), "an object constructor")
        return result

    def evaluate_equality_expression(self, lhs: Any, rhs: Any, op: Any) -> Any:
        """``=``/``!=`` compare strings, arrays and objects in full: work by the smaller side."""
        if isinstance(lhs, str) and isinstance(rhs, str):
            self.budget.work(0, min(len(lhs), len(rhs)), "comparing strings with =")
        elif isinstance(lhs, (list, dict)) and isinstance(rhs, (list, dict)):
            budget = self.budget
            limit = budget.remaining_items()
            budget.work(min(deep_size(lhs, limit), deep_size(rhs, limit)), 0, "comparing arrays or objects with =")
        return super().evaluate_equality_expression(lhs, rhs, op)

    def evaluate_comparison_expression(self, lhs: Any, rhs: Any, op: Any) -> Any:
        """``<``, ``<=``, ``>``, ``>=`` on strings: work by the shorter string."""
        if isinstance(lhs, str) and isinstance(rhs, str):
            self.budget.work(0, min(len(lhs), len(rhs)), "comparing strings")
        return super().evaluate_comparison_expression(lhs, rhs, op)

    def evaluate_includes_expression(self, lhs: Any, rhs: Any) -> Any:
        """``in``: one comparison per item of the right-hand side."""
        if isinstance(rhs, list):
            budget = self.budget
            if isinstance(lhs, str):
                budget.work(len(rhs), len(rhs) * len(lhs), "the comparisons of 'in'")
            else:
                budget.work(len(rhs) * max(1, deep_size(lhs, budget.remaining_items())), 0, "the comparisons of 'in'")
        return super().evaluate_includes_expression(lhs, rhs)

    def flatten(self, arg: Any, flattened: Any) -> Any:
        """Flattening for ``*`` (recursive): one unit per value visited."""
        self.budget.charge(1, "flattening the values of *")
        return super().flatten(arg, flattened)

    def recurse_descendants(self, input: Any, results: Any) -> None:
        """``**`` (recursive): one unit per value visited."""
        self.budget.charge(1, "walking the descendants of **")
        super().recurse_descendants(input, results)

    def evaluate_transform_expression(self, expr: Any, input: Any, environment: Any) -> Any:
        """``|pattern|update|``: the clone of its input is charged like ``$clone``."""
        return Jsonata.JFunction(_BoundedTransformer(self, expr, environment), "<(oa):o>")


class _BoundedTransformer(Jsonata.Transformer):  # type: ignore[misc]
    def call(self, input: Any, args: Any) -> Any:
        budget = active_budget()
        if budget is not None and args and args[0] is not None:
            budget.charge(deep_size(args[0], budget.remaining()), "copying the input of a transform")
        return super().call(input, args)


# ---------------------------------------------------------------------- guarded built-ins


PreCheck = Callable[[Budget, Sequence[Any]], None]


class _Guarded(Jsonata.JNativeFunction):  # type: ignore[misc]
    """A built-in function that charges the budget of the evaluation calling it."""

    reads_args: bool
    charges_result: bool
    pre: PreCheck | None

    def call(self, input: Any, args: Any) -> Any:
        budget = active_budget()
        if budget is None:
            return super().call(input, args)
        what = f"${self.function_name}"
        if self.reads_args and args:
            items = chars = 0
            for arg in args:
                if isinstance(arg, str):
                    chars += len(arg)
                elif isinstance(arg, (list, dict)):
                    items += len(arg)
            if items or chars:
                budget.work(items, chars, f"the arguments of {what}")
        if self.pre is not None:
            self.pre(budget, args or ())
        result = Functions._call(self.method, self.nargs, args)
        if self.charges_result and isinstance(result, (str, list, dict)):
            budget.charge(len(result), f"the result of {what}")
        return result


def _arg(args: Sequence[Any], index: int) -> Any:
    return args[index] if index < len(args) else None


def _pre_pad(budget: Budget, args: Sequence[Any]) -> None:
    string, width = _arg(args, 0), _arg(args, 1)
    if isinstance(string, str) and isinstance(width, (int, float)) and not isinstance(width, bool) and math.isfinite(width):
        budget.charge(max(len(string), abs(int(width))), "the string built by $pad")


def _pre_join(budget: Budget, args: Sequence[Any]) -> None:
    strs, separator = _arg(args, 0), _arg(args, 1)
    if isinstance(strs, list):
        total = sum(len(s) for s in strs if isinstance(s, str))
        if isinstance(separator, str) and strs:
            total += len(separator) * (len(strs) - 1)
        budget.charge(total, "the string built by $join")


def _pretty_size(value: Any, limit: int) -> int:
    """Characters of indented JSON, roughly: each line is indented by twice its depth."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        total += 2 * depth + 2
        if isinstance(node, str):
            total += len(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                total += len(key) if isinstance(key, str) else 1
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        if total > limit:
            break
    return total


def _pre_string(budget: Budget, args: Sequence[Any]) -> None:
    value, prettify = _arg(args, 0), _arg(args, 1)
    if value is None or isinstance(value, str):
        return
    limit = budget.remaining()
    size = _pretty_size(value, limit) if prettify else deep_size(value, limit)
    budget.charge(size, "turning a value into a string")


def _pre_clone(budget: Budget, args: Sequence[Any]) -> None:
    value = _arg(args, 0)
    if value is not None:
        budget.charge(deep_size(value, budget.remaining()), "copying a value with $clone")


def _pre_keys(budget: Budget, args: Sequence[Any]) -> None:
    value = _arg(args, 0)
    if isinstance(value, list):
        budget.work(sum(len(item) for item in value if isinstance(item, dict)), 0, "the keys read by $keys")


def _pre_merge(budget: Budget, args: Sequence[Any]) -> None:
    value = _arg(args, 0)
    if isinstance(value, list):
        budget.work(sum(len(item) for item in value if isinstance(item, dict)), 0, "the members merged by $merge")


def _pre_lookup(budget: Budget, args: Sequence[Any]) -> None:
    value = _arg(args, 0)
    if isinstance(value, list):
        count = 0
        limit = budget.remaining_items()
        stack: list[Any] = [value]
        while stack and count <= limit:
            node = stack.pop()
            count += len(node)
            stack.extend(item for item in node if isinstance(item, list))
        budget.work(count, 0, "the items searched by $lookup")


def _pre_eval(budget: Budget, args: Sequence[Any]) -> None:
    source = _arg(args, 0)
    if isinstance(source, str):
        budget.charge_steps(EVAL_STEPS_PER_CHAR * len(source), f"parsing a $eval source of {len(source):,} characters")


_WIDTH = re.compile(r"\[[^\]]*\]")
_DIGITS = re.compile(r"\d+")


def _pre_picture(index: int) -> PreCheck:
    """Width modifiers (``[Y,2000000000]``) and zero-padded widths in a date/integer picture."""

    def check(budget: Budget, args: Sequence[Any]) -> None:
        picture = _arg(args, index)
        if not isinstance(picture, str):
            return
        widest = 0
        for marker in _WIDTH.findall(picture):
            if "," in marker:
                for digits in _DIGITS.findall(marker.split(",", 1)[1]):
                    widest = max(widest, int(digits) if len(digits) < 10 else budget.max_size + 1)
        if widest:
            budget.charge(widest, "the width requested by a picture")

    return check


#: ``$formatNumber`` options that jsonata-python pastes into a regular expression (not, or not
#: fully, escaped): a longer value could be any pattern, so they must be single characters, as
#: XPath F&O 3.1 defines them.
_SINGLE_CHARACTER_FORMAT = ("decimal-separator", "grouping-separator", "exponent-separator")


def _pre_format_number(budget: Budget, args: Sequence[Any]) -> None:
    options = _arg(args, 2)
    if isinstance(options, dict):
        for key in _SINGLE_CHARACTER_FORMAT:
            value = options.get(key)
            if value is not None and (not isinstance(value, str) or len(value) != 1):
                raise ExpressionRefused("EXPRESSION_INVALID_ARGUMENT", f"$formatNumber option {key!r} must be a single character, not {str(value)[:40]!r}")


# ------------------------------------------------------------- linear or deterministic replacements


def _shuffle(arr: Any) -> Any:
    """``$shuffle`` with the workflow's seeded random (jsonata-python uses the process's)."""
    if arr is None:
        return None
    if len(arr) <= 1:
        return arr
    result = list(arr)
    for i in range(len(result) - 1, 0, -1):
        j = int(_clock.random() * (i + 1))
        result[i], result[j] = result[j], result[i]
    return result


def _distinct(arr: Any) -> Any:
    """``$distinct`` in linear time for strings, numbers and booleans (same equality as ``in``)."""
    if arr is None:
        return None
    if not isinstance(arr, list) or len(arr) <= 1:
        return arr
    results = utils.Utils.create_sequence() if isinstance(arr, JList) else []
    seen: set[Any] = set()
    containers: list[Any] = []
    budget = active_budget()
    for item in arr:
        if isinstance(item, (list, dict)):
            if budget is not None and containers:
                budget.work(len(containers) * deep_size(item, budget.remaining_items()), 0, "the comparisons of $distinct")
            if item not in containers:
                containers.append(item)
                results.append(item)
            continue
        try:
            if item in seen:
                continue
            seen.add(item)
        except TypeError:  # not hashable (a function): compare like the original did
            if item in results:
                continue
        results.append(item)
    return results


def _replace(string: Any, pattern: Any, replacement: Any, limit: Any) -> Any:
    """jsonata-python's ``$replace`` without its two traps (same results).

    A string pattern no longer copies the rest of the input at every match (quadratic); with a
    ``limit``, the replace-first loop stops once the string no longer changes (each pass is a pure
    function of the string, so further passes would change nothing) instead of running ``limit``
    times.
    """
    if string is None:
        return None
    if string is _NULL:
        raise jexception.JException("T0410", -1)
    if isinstance(pattern, str) and not pattern:
        raise jexception.JException("Second argument of replace function cannot be an empty string", 0)
    if limit is not None and limit < 0:
        raise jexception.JException("Fourth argument of replace function must evaluate to a positive number", 0)
    budget = active_budget()

    if isinstance(pattern, str):
        literal = re.compile(re.escape(pattern))

        def string_replacer(match: Any) -> str:
            parts = []
            position = 0
            repl = str(replacement)
            while position < len(repl):
                index = repl.find("$", position)
                if index == -1:
                    parts.append(repl[position:])
                    break
                parts.append(repl[position:index])
                position = index + 1
                if position < len(repl):
                    dollar_val = repl[position]
                    if dollar_val == "$":
                        parts.append("$")
                        position += 1
                    elif dollar_val == "0":
                        parts.append(match.group(0))
                        position += 1
                    else:
                        max_digits = len(str(len(match.groups())))
                        group_num = repl[position : position + max_digits]
                        if group_num.isdigit():
                            group_index = int(group_num)
                            if 0 < group_index <= len(match.groups()):
                                parts.append(match.group(group_index) or "")
                                position += len(group_num)
                            else:
                                parts.append("$")
                        else:
                            parts.append("$")
                else:
                    parts.append("$")
            return "".join(parts)

        replacer: Callable[[Any], str]
        if callable(replacement):
            replacer = lambda m: replacement(m.groupdict())  # noqa: E731 - as in jsonata-python
        elif isinstance(replacement, str):
            replacer = string_replacer
        else:
            replacer = lambda m: str(replacement)  # noqa: E731

        parts: list[str] = []
        position = 0
        count = 0
        while True:
            if limit is not None and count >= limit:
                parts.append(string[position:])
                break
            index = string.find(pattern, position)
            if index == -1:
                parts.append(string[position:])
                break
            parts.append(string[position:index])
            piece = replacer(literal.match(string, index))
            if budget is not None:
                budget.charge(len(piece) + index - position, "the string built by $replace")
            parts.append(piece)
            position = index + len(pattern)
            count += 1
        return "".join(parts)

    if limit is None:
        return Functions.safe_replace_all(string, pattern, replacement)
    count = 0
    result = string
    while count < limit:
        following = Functions.safe_replace_first(result, pattern, str(replacement))
        if budget is not None and isinstance(following, str):
            budget.charge(len(following), "the string built by $replace")
        count += 1
        if following == result:
            break
        result = following
    return result


# ------------------------------------------------------------------------------ the table

#: name → (the function reads its string/array arguments in full: counted as work, its result is
#: charged as built (False where the pre-call check or the function itself already charged what it
#: builds), pre-call check, replacement implementation). Unlisted: (True, True, None, None).
_TABLE: dict[str, tuple[bool, bool, PreCheck | None, Callable[..., Any] | None]] = {
    "pad": (True, False, _pre_pad, None),
    "join": (True, False, _pre_join, None),
    "string": (True, False, _pre_string, None),
    "clone": (True, False, _pre_clone, None),
    "keys": (True, True, _pre_keys, None),
    "merge": (True, True, _pre_merge, None),
    "lookup": (True, True, _pre_lookup, None),
    "eval": (True, True, _pre_eval, None),
    "fromMillis": (True, True, _pre_picture(1), None),
    "formatInteger": (True, True, _pre_picture(1), None),
    "formatNumber": (True, True, _pre_format_number, None),
    "shuffle": (True, True, None, _shuffle),
    "distinct": (True, True, None, _distinct),
    "replace": (True, False, None, _replace),  # charges each piece it builds
    "match": (True, False, None, None),  # each match is charged as the regex finds it
    # constant time whatever the size of their argument
    "count": (False, True, None, None),
    "exists": (False, True, None, None),
    "type": (False, True, None, None),
    "length": (False, True, None, None),
    "error": (False, True, None, None),
    "assert": (False, True, None, None),
}


def _guarded(original: Any, reads_args: bool, charges_result: bool, pre: PreCheck | None, method: Callable[..., Any] | None) -> _Guarded:
    guarded = _Guarded.__new__(_Guarded)
    guarded.__dict__.update(original.__dict__)  # same name, signature and implementation
    guarded.reads_args = reads_args
    guarded.charges_result = charges_result
    guarded.pre = pre
    if method is not None:
        guarded.method = method
        guarded.nargs = original.nargs
    return guarded


def _build_guarded() -> dict[str, _Guarded]:
    table: dict[str, _Guarded] = {}
    for name, value in Jsonata.static_frame.bindings.items():
        if isinstance(value, Jsonata.JNativeFunction) and name not in ("now", "millis", "random"):
            reads_args, charges_result, pre, method = _TABLE.get(name, (True, True, None, None))
            table[name] = _guarded(value, reads_args, charges_result, pre, method)
    return table


#: Every built-in function, guarded; bound in each compiled expression's environment.
GUARDED_FUNCTIONS: dict[str, _Guarded] = _build_guarded()


# ------------------------------------------------------------------- module-level patches

_original_append = Functions.append


def _append(arg1: Any, arg2: Any) -> Any:
    budget = active_budget()
    if budget is not None and arg1 is not None and arg2 is not None:  # charged before the copy
        budget.charge((len(arg1) if isinstance(arg1, list) else 1) + (len(arg2) if isinstance(arg2, list) else 1), "concatenating sequences")
    return _original_append(arg1, arg2)


class _DateTimeRe:
    """The ``re`` that ``jsonata.datetimeutils`` sees: RE2 for the patterns it compiles while an
    evaluation is bounded, Python's ``re`` otherwise and for everything else."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: Any, flags: int = 0) -> Any:
        if active_budget() is None or not isinstance(pattern, str):
            return re.compile(pattern, flags)
        return compile_re2(pattern, bool(flags & re.IGNORECASE), bool(flags & re.MULTILINE))

    @staticmethod
    def sub(pattern: Any, repl: Any, string: str, count: int = 0, flags: int = 0) -> str:
        if isinstance(pattern, Re2Pattern):
            return pattern.sub(repl, string, count)
        return re.sub(pattern, repl, string, count=count, flags=flags)


def _install() -> None:
    if getattr(Functions.append, "_runtime_core_bounded", False):
        return
    _append._runtime_core_bounded = True  # type: ignore[attr-defined]
    Functions.append = staticmethod(_append)
    datetimeutils.re = _DateTimeRe()


_install()
