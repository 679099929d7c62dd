"""The fast path: common JSONata shapes compiled to plain Python closures, once per definition.

jsonata-python stays the reference. :func:`compile_fast` walks the AST that jsonata-python's own
parser produced (after its post-processing, so parsing is identical) and returns a closure only
when every node is one of the shapes below, with none of the flags that change their meaning
(``keep_array``, focus/index/ancestor binding, grouping, sorting, ``consarray``). Anything else
returns ``None`` and the expression always runs on jsonata-python.

The closures mirror jsonata-python 0.7.1's evaluator step by step and keep its value
representation (``None`` is undefined, ``Utils.NULL_VALUE`` is JSON null, sequences are
``JList`` with ``sequence`` set and are unwrapped after each node as ``Jsonata._eval`` does), so
results are the same objects jsonata-python would build. Shapes:

* literals; paths of names (with a fast walk through nested objects), ``$`` and ``$$`` and bound
  ``$variables``; blocks ``(a; b)``;
* filters ``[predicate]`` on steps and values, when the predicate is not a number literal (a
  predicate that *evaluates* to a number or an array of numbers is an index: fallback);
* ``+ - * / %``, unary ``-``, ``= != < <= > >=``, ``and``/``or``, ``&``, ``in``, ``? :``,
  ``?:`` and ``??``;
* array constructors and object constructors ``{k: v}`` (over a single context value);
* ``$sum $count $max $min $average $string $number $exists $lowercase $uppercase`` with one
  argument.

Fallback at run time: a closure raises :class:`Fallback` (or any exception) whenever a value is not
one it handles exactly or jsonata-python would raise an error; the caller then evaluates the same
expression with jsonata-python, which produces the exact result or error. The fast path never
reports an error of its own.

Bounds: a closure counts the items it processes (path steps read and build, filter inputs, arrays
and objects built, list arguments of functions, ``in`` and ``=`` on arrays and objects, one per
1,000 characters of strings compared) and the characters it builds (``&``, ``$string``,
``$lowercase``, ``$uppercase``), and falls back as soon as either passes its limit
(:meth:`FastExpression.limits`): with ``N`` compiled nodes, at most
``max_steps // (2 * (N + 1)) - 1`` items (jsonata-python evaluates each node at most once per item
processed, so it would use at most half its step budget) and at most ``max_size // 4`` items and
``max_size // 4`` characters (so at most half its size budget before the result, whose size the
caller checks against the other half). Expressions nested deeper than :data:`MAX_FAST_DEPTH` are
not compiled, and one is only run fast when its depth is at most half the depth budget. The
wall-clock backstop is not read: the work is bounded by the counts above.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.utils import Utils

from runtime_core.expressions._bounds import deep_size

__all__ = ["FAST_FUNCTIONS", "MAX_FAST_DEPTH", "Fallback", "FastExpression", "compile_fast"]

#: Expressions nested deeper than this are left to jsonata-python.
MAX_FAST_DEPTH: Final = 40

#: Built-in functions the fast path calls (with exactly one argument).
FAST_FUNCTIONS: Final = frozenset({"sum", "count", "max", "min", "average", "string", "number", "exists", "lowercase", "uppercase"})

_NULL: Final = Utils.NULL_VALUE
_MISSING: Final = object()
JList = Utils.JList

_boolean = Functions.to_boolean
_string = Functions.string
_number = Functions.number
_is_numeric = Utils.is_numeric
_is_array_of_numbers = Utils.is_array_of_numbers
_is_deep_equal = Utils.is_deep_equal
_convert_number = Utils.convert_number


class Fallback(Exception):
    """The fast path cannot give jsonata-python's answer for this evaluation: use jsonata-python."""


class _Unsupported(Exception):
    """A node shape the compiler does not handle (compile time)."""


class _State:
    """Per-evaluation state: the root input, the bindings and the work counters."""

    __slots__ = ("bindings", "chars", "items", "max_chars", "max_items", "root")

    def __init__(self, root: Any, bindings: dict[str, Any] | None, max_items: int, max_chars: int) -> None:
        self.root = root
        self.bindings = bindings
        self.items = 0
        self.chars = 0
        self.max_items = max_items
        self.max_chars = max_chars

    def work(self, items: int) -> None:
        self.items += items
        if self.items > self.max_items:
            raise Fallback("items")

    def built(self, chars: int) -> None:
        self.chars += chars
        if self.chars > self.max_chars:
            raise Fallback("chars")


Closure = Callable[[Any, _State], Any]


class FastExpression:
    """A compiled fast closure with what the bounds rule needs to know about it."""

    __slots__ = ("_run", "depth", "nodes")

    def __init__(self, run: Closure, nodes: int, depth: int) -> None:
        """Wrap the root closure; ``nodes`` and ``depth`` describe the compiled tree."""
        self._run = run
        self.nodes = nodes
        self.depth = depth

    def limits(self, max_steps: int, max_size: int) -> tuple[int, int]:
        """Items and characters one fast evaluation may process within the given budgets."""
        items = min(max_steps // (2 * (self.nodes + 1)) - 1, max_size // 4)
        return items, max_size // 4

    def run(self, context: Any, bindings: dict[str, Any] | None, max_steps: int, max_size: int) -> Any:
        """Evaluate against ``context`` (a dict); the result is in jsonata-python's representation.

        Raises:
            Fallback: (or any other exception) the evaluation must be done by jsonata-python.
        """
        if type(context) is not dict:
            raise Fallback("context")
        items, chars = self.limits(max_steps, max_size)
        if items < 1:
            raise Fallback("budget")
        return self._run(context, _State(context, bindings, items, chars))


def compile_fast(ast: Any) -> FastExpression | None:
    """Compile jsonata-python's (post-processed) AST ``ast``; ``None`` when a node is not supported."""
    compiler = _Compiler()
    try:
        run = compiler.node(ast, 0)
    except _Unsupported:
        return None
    except Exception:  # an AST shape nobody planned for: jsonata-python evaluates it
        return None
    return FastExpression(run, compiler.count, compiler.depth)


# ---------------------------------------------------------------------------------- helpers


def _mangle(result: Any) -> Any:
    """What ``Jsonata._eval`` does to a node's result: singleton sequences unwrap, empty ones vanish."""
    if isinstance(result, JList) and result.sequence and not result.tuple_stream:
        if not result:
            return None
        if len(result) == 1:
            return result if result.keep_singleton else result[0]
    return result


def _sequence() -> Any:
    seq = JList()
    seq.sequence = True
    return seq


def _boolize(value: Any) -> bool:
    if value is True or value is False:
        return value
    result = _boolean(value)
    return False if result is None else bool(result)


def _lookup(value: Any, key: str, st: _State) -> Any:
    """``Functions.lookup``, counting the array items it walks."""
    if isinstance(value, dict):
        result = value.get(key, _MISSING)
        if result is _MISSING:
            return None
        return _NULL if result is None else result
    if isinstance(value, list):
        st.work(len(value))
        out = _sequence()
        for item in value:
            res = _lookup(item, key, st)
            if res is not None:
                if isinstance(res, list):
                    out.extend(res)
                else:
                    out.append(res)
        return out
    return None


def _filter(predicate: Closure, value: Any, st: _State) -> Any:
    """``Jsonata.evaluate_filter`` for a predicate that is not a number literal."""
    results = _sequence()
    if value is None:
        return results
    if isinstance(value, JList) and value.tuple_stream:
        raise Fallback("tuple stream")
    items = value if isinstance(value, list) else (value,)
    st.work(len(items))
    for item in items:
        res = predicate(item, st)
        if res is True:
            results.append(item)
        elif res is False or res is None:
            continue
        elif _is_numeric(res) or _is_array_of_numbers(res):
            raise Fallback("index predicate")
        elif _boolize(res):
            results.append(item)
    return results


def _run_step(step: Closure, stages: Sequence[Closure], inputs: Any, last: bool, st: _State) -> Any:
    """``Jsonata.evaluate_step`` (no sort, no tuples)."""
    st.work(len(inputs))
    result = []
    for inp in inputs:
        res = step(inp, st)
        for stage in stages:
            res = _filter(stage, res, st)
        if res is not None:
            result.append(res)
    if last and len(result) == 1 and isinstance(result[0], list) and not (isinstance(result[0], JList) and result[0].sequence):
        st.work(len(result[0]))  # (jsonata-python charges every step's result, this array too)
        return result[0]
    seq = _sequence()
    for res in result:
        if not isinstance(res, list) or (isinstance(res, JList) and res.cons):
            seq.append(res)
        else:
            seq.extend(res)
    st.work(len(seq))
    return seq


def _name_step(key: str, stages: Sequence[Closure], inputs: Any, last: bool, st: _State) -> Any:
    """:func:`_run_step` for a step that is a plain name (its lookup inlined)."""
    st.work(len(inputs))
    seq = _sequence()
    first: Any = None
    results = 0
    for inp in inputs:
        if type(inp) is dict:
            res = inp.get(key, _MISSING)
            if res is _MISSING:
                res = None
            elif res is None:
                res = _NULL
            elif type(res) is JList:  # (a result of an earlier evaluation, kept in the context)
                res = _mangle(res)
        else:
            res = _mangle(_lookup(inp, key, st))
        for stage in stages:
            res = _filter(stage, res, st)
        if res is None:
            continue
        results += 1
        if results == 1:
            first = res
        if not isinstance(res, list) or (isinstance(res, JList) and res.cons):
            seq.append(res)
        else:
            seq.extend(res)
    if last and results == 1 and isinstance(first, list) and not (isinstance(first, JList) and first.sequence):
        st.work(len(first))
        return first
    st.work(len(seq))
    return seq


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


# ---------------------------------------------------------------------------- operators


def _numeric(op: str) -> Callable[[Any, Any], Any]:
    compute: Callable[[float, float], Any]
    if op == "+":
        compute = float.__add__
    elif op == "-":
        compute = float.__sub__
    elif op == "*":
        compute = float.__mul__
    elif op == "/":
        compute = float.__truediv__  # division by zero raises: jsonata-python raises too
    else:

        def compute(a: float, b: float) -> Any:
            return int(math.fmod(a, b))

    def numeric(lhs: Any, rhs: Any) -> Any:
        if lhs is not None and not _is_number(lhs):
            raise Fallback("T2001")
        if rhs is not None and not _is_number(rhs):
            raise Fallback("T2002")
        if lhs is None or rhs is None:
            return None
        result = compute(float(lhs), float(rhs))
        if type(result) is float and not math.isfinite(result):
            raise Fallback("D1001")
        return _convert_number(result)

    return numeric


def _comparable(value: Any) -> bool:
    kind = type(value)
    return value is None or kind is str or kind is int or kind is float


_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _constant(expr: Any) -> Any:
    """The value of a number or string literal node without flags (else ``_MISSING``)."""
    if expr is not None and expr.type in ("number", "string") and expr.predicate is None and not expr.keep_array and expr.group is None:
        return expr.value
    return _MISSING


def _comparison(op: str) -> Callable[[Any, Any, _State], Any]:
    compare = _OPERATORS[op]

    def comparison(lhs: Any, rhs: Any, st: _State) -> Any:
        if not _comparable(lhs) or not _comparable(rhs):
            raise Fallback("T2010")
        if lhs is None or rhs is None:
            return None
        if type(lhs) is not type(rhs):
            if type(lhs) is str or type(rhs) is str:
                raise Fallback("T2009")
            lhs = float(lhs)
            rhs = float(rhs)
        elif type(lhs) is str:
            st.work(min(len(lhs), len(rhs)) // 1000)
        return compare(lhs, rhs)

    return comparison


def _equality(negate: bool) -> Callable[[Any, Any, _State], Any]:
    def equality(lhs: Any, rhs: Any, st: _State) -> Any:
        if lhs is None or rhs is None:
            return False
        lkind = type(lhs)
        rkind = type(rhs)
        if lkind is str and rkind is str:
            st.work(min(len(lhs), len(rhs)) // 1000)
            return (lhs != rhs) if negate else (lhs == rhs)
        if lkind is int or lkind is float:
            lhs = float(lhs)
        if rkind is int or rkind is float:
            rhs = float(rhs)
        if isinstance(lhs, (list, dict)) and isinstance(rhs, (list, dict)):
            limit = st.max_items - st.items
            st.work(min(deep_size(lhs, limit), deep_size(rhs, limit)))
        equal = _is_deep_equal(lhs, rhs)
        return (not equal) if negate else equal

    return equality


def _includes(lhs: Any, rhs: Any, st: _State) -> bool:
    if lhs is None or rhs is None:
        return False
    if isinstance(lhs, (list, dict)):
        raise Fallback("container in")
    if not isinstance(rhs, list):
        rhs = [rhs]
    st.work(len(rhs))
    if isinstance(lhs, str):
        st.work(len(rhs) * len(lhs) // 1000)
    return any(item == lhs for item in rhs)


def _concat(lhs: Any, rhs: Any, st: _State) -> str:
    left = "" if lhs is None else (lhs if type(lhs) is str else _string(lhs, None))
    right = "" if rhs is None else (rhs if type(rhs) is str else _string(rhs, None))
    if type(left) is not str or type(right) is not str:
        raise Fallback("string")
    result: str = left + right
    # jsonata-python also charges a non-string operand's size before turning it into a string:
    # at most the length of that string
    converted = (0 if lhs is None or type(lhs) is str else len(left)) + (0 if rhs is None or type(rhs) is str else len(right))
    st.built(len(result) + converted)
    return result


# ---------------------------------------------------------------------------- functions


def _numbers_arg(name: str) -> Callable[[Any, _State], Any]:
    method = getattr(Functions, name)

    def call(arg: Any, st: _State) -> Any:
        if arg is None:
            return method(None)
        if _is_number(arg):
            return method([arg])
        if type(arg) is list or type(arg) is JList:
            st.work(len(arg))
            for item in arg:
                if not _is_number(item):
                    raise Fallback("T0412")
            result = method(arg)
            if type(result) is float and not math.isfinite(result):
                raise Fallback("not finite")
            return result
        raise Fallback("argument")

    return call


def _count(arg: Any, st: _State) -> Any:
    if arg is None or arg is _NULL:  # (jsonata-python's signature check drops a null argument)
        return 0
    if isinstance(arg, list):
        if isinstance(arg, Utils.RangeList):
            raise Fallback("range")
        return len(arg)
    kind = type(arg)
    if kind is str or kind is dict or kind is bool or _is_number(arg):
        return 1
    raise Fallback("argument")


def _exists(arg: Any, st: _State) -> Any:
    if arg is None:
        return False
    if arg is _NULL:
        return True
    kind = type(arg)
    if kind is str or kind is dict or kind is bool or kind is list or kind is JList or _is_number(arg):
        return True
    raise Fallback("argument")


def _string_fn(arg: Any, st: _State) -> Any:
    if arg is None:
        return None
    kind = type(arg)
    if kind is str:
        return arg
    if kind is int or kind is bool or arg is _NULL or (kind is float and math.isfinite(arg)):
        result = _string(arg, None)
    elif kind is dict or kind is list or kind is JList:
        st.work(deep_size(arg, st.max_items - st.items))
        result = _string(arg, None)
    else:
        raise Fallback("argument")
    if type(result) is not str:
        raise Fallback("string")
    st.built(len(result))
    return result


def _number_fn(arg: Any, st: _State) -> Any:
    if arg is None:
        return None
    kind = type(arg)
    if kind is bool or _is_number(arg):
        return _number(arg)
    if kind is str:
        st.work(len(arg) // 1000)
        result = _number(arg)
        if not _is_number(result):
            raise Fallback("not a finite number")
        return result
    raise Fallback("argument")


def _case(method: Callable[[Any], Any]) -> Callable[[Any, _State], Any]:
    def call(arg: Any, st: _State) -> Any:
        if arg is None:
            return None
        if type(arg) is not str:
            raise Fallback("argument")
        result = method(arg)
        st.built(len(result))
        return result

    return call


_FUNCTIONS: Final[dict[str, Callable[[Any, _State], Any]]] = {
    "sum": _numbers_arg("sum"),
    "max": _numbers_arg("max"),
    "min": _numbers_arg("min"),
    "average": _numbers_arg("average"),
    "count": _count,
    "exists": _exists,
    "string": _string_fn,
    "number": _number_fn,
    "lowercase": _case(Functions.lowercase),
    "uppercase": _case(Functions.uppercase),
}

#: Names bound to functions in every compiled expression's environment (a variable naming one
#: evaluates to a function, which the fast path does not handle).
_FUNCTION_NAMES: Final = frozenset(Jsonata.static_frame.bindings) | {"now", "millis", "random"}

_JSON_TYPES: Final = (dict, list, str, int, float, bool)


# ------------------------------------------------------------------------------ compiler


class _Compiler:
    def __init__(self) -> None:
        self.count = 0
        self.depth = 0

    def node(self, expr: Any, depth: int) -> Closure:
        if expr is None:
            raise _Unsupported("missing node")
        depth += 1
        if depth > MAX_FAST_DEPTH:
            raise _Unsupported("too deep")
        self.depth = max(self.depth, depth)
        self.count += 1
        if (
            expr.keep_array
            or expr.group is not None
            or expr.focus is not None
            or expr.index is not None
            or expr.tuple is not None
            or expr.ancestor is not None
            or expr.seeking_parent is not None
            or expr.consarray
            or expr.stages is not None
            or getattr(expr, "next_function", None) is not None
        ):
            raise _Unsupported("flags")
        kind = expr.type
        method = getattr(self, f"_{kind}", None)
        if method is None:
            raise _Unsupported(str(kind))
        run: Closure
        run, mangles = method(expr, depth)
        if expr.predicate is not None:
            run = self._predicated(run, expr.predicate, depth)
            mangles = True
        if mangles:
            inner = run

            def mangled(x: Any, st: _State) -> Any:
                return _mangle(inner(x, st))

            return mangled
        return run

    def _predicated(self, run: Closure, filters: Any, depth: int) -> Closure:
        predicates = [self._predicate(item, depth) for item in filters]

        def predicated(x: Any, st: _State) -> Any:
            result = run(x, st)
            for predicate in predicates:
                result = _filter(predicate, result, st)
            return result

        return predicated

    def _predicate(self, item: Any, depth: int) -> Closure:
        if item.type != "filter" or item.expr is None or item.expr.type == "number":
            raise _Unsupported("predicate")
        return self.node(item.expr, depth)

    # ---------------------------------------------------------------- leaves

    def _string(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        value = expr.value
        if type(value) is not str:
            raise _Unsupported("string literal")
        return (lambda x, st: value), False

    def _number(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        value = expr.value
        if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
            raise _Unsupported("number literal")
        return (lambda x, st: value), False

    def _value(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        value = expr.value
        if value is None:
            value = _NULL
        elif value is not True and value is not False:
            raise _Unsupported("value literal")
        return (lambda x, st: value), False

    def _name(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        key = expr.value
        if type(key) is not str:
            raise _Unsupported("name")

        def name(x: Any, st: _State) -> Any:
            return _lookup(x, key, st)

        return name, True

    def _variable(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        var = expr.value
        if var == "":

            def context(x: Any, st: _State) -> Any:
                if isinstance(x, JList) and x.outer_wrapper:
                    raise Fallback("outer wrapper")
                return x

            return context, True
        if var == "$":
            return (lambda x, st: st.root), True
        if type(var) is not str:
            raise _Unsupported("variable")
        builtin = var in _FUNCTION_NAMES

        def variable(x: Any, st: _State) -> Any:
            bindings = st.bindings
            if bindings is not None and var in bindings:
                value = bindings[var]
                if value is None or type(value) in _JSON_TYPES:
                    return value
                raise Fallback("binding type")
            if builtin:
                raise Fallback("function value")
            return None

        return variable, True

    # ---------------------------------------------------------------- paths

    def _path(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        steps = expr.steps
        if not steps or expr.keep_singleton_array:
            raise _Unsupported("path")
        compiled: list[tuple[Closure, list[Closure], str | None]] = []
        for step in steps:
            if step.type == "sort" or step.type == "parent":
                raise _Unsupported("step")
            stages = step.stages
            step.stages = None  # compiled separately below (node() refuses stages elsewhere)
            try:
                run = self.node(step, depth)
            finally:
                step.stages = stages
            filters = [self._predicate(stage, depth) for stage in stages] if stages is not None else []
            plain_name = step.value if step.type == "name" and step.predicate is None and type(step.value) is str else None
            compiled.append((run, filters, plain_name))
        first_is_variable = steps[0].type == "variable"
        count = len(compiled)

        def general(inputs: Any, start: int, st: _State) -> Any:
            result: Any = None
            for index in range(start, count):
                run, filters, plain_name = compiled[index]
                if plain_name is not None:
                    result = _name_step(plain_name, filters, inputs, index == count - 1, st)
                else:
                    result = _run_step(run, filters, inputs, index == count - 1, st)
                if not result:
                    break
                inputs = result
            return result

        names = [s.value for s in steps] if all(s.type == "name" and s.stages is None and s.predicate is None and type(s.value) is str for s in steps) else None
        if names is not None and count == 1:
            only = names[0]

            def walk1(x: Any, st: _State) -> Any:
                if type(x) is dict:
                    value = x.get(only, _MISSING)
                    if value is _MISSING:
                        return None
                    if value is None:
                        return _NULL
                    if type(value) is list:
                        st.work(len(value))
                        return value
                    if not isinstance(value, list):
                        return value
                    return _mangle(general(_sequence_of(x), 0, st))
                if isinstance(x, list):
                    return _mangle(general(x, 0, st))
                if x is None or x is _NULL or type(x) in (str, int, float, bool):
                    return None
                raise Fallback("context")

            return walk1, False
        if names is not None:
            walk_names = _walker(names, 0, general)

            def walk(x: Any, st: _State) -> Any:
                if type(x) is dict:
                    return walk_names(x, st)
                if isinstance(x, list):
                    return _mangle(general(x, 0, st))
                if x is None or x is _NULL or type(x) in (str, int, float, bool):
                    return None
                raise Fallback("context")

            return walk, False
        first = steps[0]
        if (
            count > 1
            and first.type == "variable"
            and first.value in ("", "$")
            and first.predicate is None
            and all(s.type == "name" and s.stages is None and s.predicate is None and type(s.value) is str for s in steps[1:])
        ):
            # $.a.b / $$.a.b: the variable's value, then a walk through nested objects
            walk_rest = _walker([s.value for s in steps[1:]], 1, general)
            from_root = first.value == "$"

            def rooted(x: Any, st: _State) -> Any:
                start = st.root if from_root else x
                if type(start) is dict:
                    return walk_rest(start, st)
                return _mangle(general(_sequence_of(x), 0, st))

            return rooted, False

        def path(x: Any, st: _State) -> Any:
            inputs = x if isinstance(x, list) and not first_is_variable else _sequence_of(x)
            return general(inputs, 0, st)

        return path, True

    # ---------------------------------------------------------------- operators

    def _binary(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        op = str(expr.value)
        lhs = self.node(expr.lhs, depth)
        rhs = self.node(expr.rhs, depth)
        if op == "and":

            def conj(x: Any, st: _State) -> Any:
                return _boolize(lhs(x, st)) and _boolize(rhs(x, st))

            return conj, False
        if op == "or":

            def disj(x: Any, st: _State) -> Any:
                return _boolize(lhs(x, st)) or _boolize(rhs(x, st))

            return disj, False
        if op in ("+", "-", "*", "/", "%"):
            numeric = _numeric(op)

            def arith(x: Any, st: _State) -> Any:
                return numeric(lhs(x, st), rhs(x, st))

            return arith, False
        with_state: Callable[[Any, Any, _State], Any]
        if op in ("<", "<=", ">", ">="):
            slow_compare = _comparison(op)
            compare = _OPERATORS[op]
            constant = _constant(expr.rhs)
            if type(constant) is int or type(constant) is float:
                number = constant

                def compare_number(x: Any, st: _State) -> Any:
                    left = lhs(x, st)
                    kind = type(left)
                    if kind is int or kind is float:
                        return compare(left, number) if kind is type(number) else compare(float(left), float(number))
                    return slow_compare(left, number, st)

                return compare_number, False

            def comparison(x: Any, st: _State) -> Any:
                left = lhs(x, st)
                right = rhs(x, st)
                kind = type(left)
                if (kind is int or kind is float) and kind is type(right):
                    return compare(left, right)
                return slow_compare(left, right, st)

            return comparison, False
        elif op in ("=", "!="):
            with_state = _equality(op == "!=")
        elif op == "&":
            with_state = _concat
        elif op == "in":
            with_state = _includes
        else:
            raise _Unsupported(op)
        apply = with_state

        def binary(x: Any, st: _State) -> Any:
            return apply(lhs(x, st), rhs(x, st), st)

        return binary, False

    def _unary(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        op = str(expr.value)
        if op == "-":
            operand = self.node(expr.expression, depth)

            def negate(x: Any, st: _State) -> Any:
                value = operand(x, st)
                if value is None:
                    return None
                if not _is_number(value):
                    raise Fallback("D1002")
                return _convert_number(-float(value))

            return negate, False
        if op == "[":
            items = [(self.node(item, depth), str(item.value) == "[") for item in expr.expressions]
            width = max(1, len(items))

            def array(x: Any, st: _State) -> Any:
                result = JList()
                for run, nested in items:
                    value = run(x, st)
                    if value is not None:
                        if nested or not isinstance(value, list):
                            result.append(value)
                        else:
                            result.extend(value)
                st.work(len(result) * width)
                return result

            return array, False
        if op == "{":
            pairs = [(self.node(key, depth), self.node(value, depth)) for key, value in expr.lhs_object]

            def obj(x: Any, st: _State) -> Any:
                if isinstance(x, list):
                    raise Fallback("grouping over an array")
                chosen: dict[str, int] = {}
                for index, (key_run, _value_run) in enumerate(pairs):
                    key = key_run(x, st)
                    if key is None:
                        continue
                    if type(key) is not str:
                        raise Fallback("T1003")
                    if key in chosen:
                        raise Fallback("D1009 or grouping")
                    chosen[key] = index
                result = {}
                for key, index in chosen.items():
                    value = pairs[index][1](x, st)
                    if value is not None:
                        result[key] = value
                st.work(len(result) + 1)
                return result

            return obj, False
        raise _Unsupported(op)

    def _condition(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        condition = self.node(expr.condition, depth)
        then = self.node(expr.then, depth)
        otherwise = self.node(expr._else, depth) if expr._else is not None else None

        def cond(x: Any, st: _State) -> Any:
            if _boolize(condition(x, st)):
                return then(x, st)
            if otherwise is not None:
                return otherwise(x, st)
            return None

        return cond, True

    def _block(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        parts = [self.node(item, depth) for item in expr.expressions or ()]
        if not parts:
            return (lambda x, st: None), False

        def block(x: Any, st: _State) -> Any:
            result = None
            for part in parts:
                result = part(x, st)
            return result

        return block, True

    def _function(self, expr: Any, depth: int) -> tuple[Closure, bool]:
        procedure = expr.procedure
        if procedure is None or procedure.type != "variable" or procedure.predicate is not None or procedure.keep_array:
            raise _Unsupported("procedure")
        name = procedure.value
        implementation = _FUNCTIONS.get(name)
        if implementation is None or expr.arguments is None or len(expr.arguments) != 1:
            raise _Unsupported("function")
        self.count += 1  # the procedure's own evaluation step
        argument = self.node(expr.arguments[0], depth)

        def call(x: Any, st: _State) -> Any:
            bindings = st.bindings
            if bindings is not None and name in bindings:
                raise Fallback("rebound function")
            result = implementation(argument(x, st), st)
            kind = type(result)
            if kind is int or kind is float:  # what Functions._call does to a numeric result
                if kind is float and not math.isfinite(result):
                    raise Fallback("not finite")
                return _convert_number(result)
            return result

        return call, False


def _walker(names: list[str], offset: int, general: Callable[[Any, int, _State], Any]) -> Callable[[dict[str, Any], _State], Any]:
    """The steps ``names`` (path steps ``offset`` onwards) from one object: nested ``get`` calls
    while the values are objects, ``general`` (the step-by-step path) from the first array on."""
    last = len(names) - 1

    def walk(current: dict[str, Any], st: _State) -> Any:
        for index, key in enumerate(names):
            value = current.get(key, _MISSING)
            if value is _MISSING:
                return None
            if value is None:
                value = _NULL
            if index == last:
                if type(value) is list:
                    st.work(len(value))  # (jsonata-python charges every step's result)
                    return value
                if not isinstance(value, list):
                    return value
                return _mangle(general(_sequence_of(current), index + offset, st))
            if isinstance(value, dict):
                current = value
                continue
            if isinstance(value, list):
                return _mangle(general(_sequence_of(current), index + offset, st))
            return None  # a scalar or null: the next step finds nothing
        return None  # pragma: no cover - the loop always returns

    return walk


def _sequence_of(value: Any) -> Any:
    seq = JList((value,))
    seq.sequence = True
    return seq
