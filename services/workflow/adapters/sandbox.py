"""The sandbox every diagram expression runs in: gateway conditions, script tasks, DMN cells,
timer expressions, message correlation expressions.

Diagrams are written by people who are not trusted with the worker process. Code from a diagram
is compiled by RestrictedPython under a stricter policy (:class:`_DiagramPolicy`) and run against
a small, fixed set of names. Rejected when compiled, so a diagram that tries fails at deploy
(:func:`check_expression`): imports, names and attributes starting with ``_``, frame/generator
internals (``gi_frame``, ``f_globals``...), ``str.format``/``format_map``, classes, ``with``,
``try/except*``, ``print``, the names ``eval exec compile open getattr setattr delattr hasattr globals
locals vars dir memoryview``, and calls of ``type object super id issubclass input help`` (as plain
names they may still be task data: ``type == "incident"``).

What diagram code may use (everything else is a NameError):

* constants and types: ``None True False bool int float str list tuple dict set frozenset``
* functions: ``abs all any chr divmod enumerate filter isinstance len map max min ord range
  repr reversed round sorted sum zip``
* exceptions, to raise or catch: ``Exception ArithmeticError AssertionError IndexError KeyError
  LookupError TypeError ValueError ZeroDivisionError``
* dates: ``now()`` (aware UTC), ``parse_datetime(text)`` (ISO 8601 with an offset; naive text is
  rejected because it would silently mean the server's zone), ``parse_duration(text)`` (ISO 8601
  duration such as ``"PT30M"`` to a ``timedelta``, months counted from now), ``timedelta``, ``UTC``

``range`` and ``sum`` are the sandbox's own: ``range`` refuses more than ``MAX_RANGE_LENGTH`` items,
``sum`` adds numbers and timedeltas only (``sum(lists, [])`` would concatenate in C, unguarded).

Writes go only into dicts and lists (task data); attribute writes are refused.

Every run has a time limit. RestrictedPython's compile step also instruments the code: each loop
iteration, comprehension step, function and lambda call starts with a ``_tick_()`` that raises once
the step's deadline has passed, so ``while True: pass`` fails that step instead of the worker. No
signals (they only work on the main thread) and no ``sys.settrace``: in Python 3.11 a one-line
``while True: pass`` emits no line events, a trace function that raises is switched off for the
thread (a caught timeout would never fire again), and tracing fights coverage and debuggers. After
the deadline every tick raises again, so ``try/except`` cannot swallow the limit for long, and a
run that swallowed it still fails. Plain expressions without loops carry no tick at all.

Known limits: memory is not capped. ``+``, ``*``, ``**`` and ``<<`` refuse results beyond
``MAX_SEQUENCE_LENGTH`` items or ``MAX_INT_BITS`` bits, but ``str.join``, ``str.ljust``/``center``/
``zfill``, ``str.replace`` and format widths (``f"{x:>999999999}"``, ``"%*d"``) can still build large
strings in one C call, and a loop can allocate until its deadline. Run workers under a memory limit
(cgroup ``memory.max`` or ``RLIMIT_AS``). A single C call is not interrupted by the deadline; every C
call reachable here is bounded by the size of its (capped) inputs.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import threading
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from types import CodeType, TracebackType
from typing import Any, Final, Literal, cast

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence, safer_getattr_raise
from RestrictedPython.transformer import RestrictingNodeTransformer
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException

from services.workflow.adapters.engine.clock import engine_now

SANDBOX_FILENAME: Final = "<diagram>"
DEFAULT_STEP_TIME_LIMIT: Final = 1.0
MAX_SEQUENCE_LENGTH: Final = 1_000_000
MAX_INT_BITS: Final = 100_000
MAX_RANGE_LENGTH: Final = 100_000
MAX_DURATION_MONTHS: Final = 1200
_CACHE_SIZE: Final = 4096

ExpressionKind = Literal["expression", "script"]


class SandboxError(Exception):
    """Base of everything the sandbox raises about diagram code."""


class SandboxViolation(SandboxError):
    """The code uses something the sandbox forbids; found when compiling, before anything runs."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SandboxTimeout(SandboxError):
    """The code ran past its step's time limit."""


class SandboxLimitExceeded(SandboxError):
    """The code tried to build a value larger than the sandbox allows."""


class _Deadline(BaseException):
    """Raised inside diagram code; a BaseException so ``except Exception`` there does not catch it."""


# -- compiling --------------------------------------------------------------------------------

_TICK: Final = "_tick_"
_BINOP_GUARDS: Final[Mapping[type[ast.operator], str]] = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
}
# Rejected wherever they appear: there is no harmless use of them in a diagram.
_FORBIDDEN_NAMES: Final = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "memoryview",
        "print",  # RestrictedPython would collect the output into `printed`; nobody would read it
        "printed",
    }
)
# Rejected only as calls: `type == "incident"` is a fine condition on a form field called `type`.
_FORBIDDEN_CALLS: Final = frozenset(
    {"type", "object", "super", "input", "help", "id", "issubclass", "classmethod", "staticmethod", "property"}
)
# `"{0.__class__}".format(x)` walks attributes inside the format string, out of the compiler's sight.
_FORBIDDEN_ATTRIBUTES: Final = frozenset({"format", "format_map"})


def _tick_call(at: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name(_TICK, ast.Load()), args=[], keywords=[])
    for node in ast.walk(call):
        ast.copy_location(node, at)
    return call


class _DiagramPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, stricter, plus deadline ticks and size guards."""

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, "import statements are not allowed.")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        self.error(node, "import statements are not allowed.")
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "class definitions are not allowed.")
        return node

    def visit_With(self, node: ast.With) -> ast.AST:
        self.error(node, "with statements are not allowed.")
        return node

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in _FORBIDDEN_NAMES:
            self.error(node, f'"{node.id}" is not available in diagrams.')
        return super().visit_Name(node)

    def visit_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_CALLS:
            self.error(node, f'"{node.func.id}()" is not available in diagrams.')
        return super().visit_Call(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr in _FORBIDDEN_ATTRIBUTES:
            self.error(node, f'".{node.attr}()" is not available in diagrams; use an f-string.')
        return super().visit_Attribute(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=[node.left, node.right], keywords=[])
        ast.copy_location(call, node)
        ast.copy_location(call.func, node)
        return call

    def visit_While(self, node: ast.While) -> Any:
        node = cast(ast.While, super().visit_While(node))
        node.body.insert(0, ast.copy_location(ast.Expr(_tick_call(node.body[0])), node.body[0]))
        return node

    def visit_For(self, node: ast.For) -> Any:
        node = cast(ast.For, super().visit_For(node))
        node.body.insert(0, ast.copy_location(ast.Expr(_tick_call(node.body[0])), node.body[0]))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        node = cast(ast.comprehension, super().visit_comprehension(node))
        node.ifs.insert(0, _tick_call(node.target))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, ast.copy_location(ast.Expr(_tick_call(node.body[0])), node.body[0]))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        node = cast(ast.Lambda, super().visit_Lambda(node))
        # `_tick_() and body`: _tick_ returns True, so the lambda still returns its body's value.
        node.body = ast.copy_location(ast.BoolOp(op=ast.And(), values=[_tick_call(node.body), node.body]), node.body)
        return node


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(source: str, mode: Literal["eval", "exec"]) -> CodeType | tuple[str, ...]:
    """Code, or the problems found; both cached, so a broken condition is not recompiled per token."""
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source, filename=SANDBOX_FILENAME, policy=_DiagramPolicy)
    if result.errors:
        return tuple(result.errors)
    assert result.code is not None
    return result.code


def _compiled(source: str, mode: Literal["eval", "exec"]) -> CodeType:
    if not isinstance(source, str):
        raise SandboxViolation((f"expected source text, got {type(source).__name__}",))
    # eval() forgives leading blanks, the parser does not; DMN cells often carry them.
    compiled = _compile(source.strip() if mode == "eval" else source, mode)
    if isinstance(compiled, tuple):
        raise SandboxViolation(compiled)
    return compiled


def compile_expression(source: str) -> CodeType:
    """Compile a condition, DMN cell or timer expression; raises SandboxViolation."""
    return _compiled(source, "eval")


def compile_script(source: str) -> CodeType:
    """Compile a script task's script; raises SandboxViolation."""
    return _compiled(source, "exec")


def check_expression(source: str, kind: ExpressionKind) -> list[str]:
    """Problems with diagram code, for deploy-time validation; compiles, never runs."""
    if kind not in ("expression", "script"):
        raise ValueError(f"kind must be 'expression' or 'script', not {kind!r}")
    try:
        compile_expression(source) if kind == "expression" else compile_script(source)
    except SandboxViolation as violation:
        return list(violation.problems)
    return []


# -- the time limit ----------------------------------------------------------------------------


class _Clock(threading.local):
    deadline: float = math.inf
    expired: bool = False


_clock = _Clock()


def _tick(_now: Callable[[], float] = time.perf_counter) -> bool:
    if _now() > _clock.deadline:
        _clock.expired = True
        raise _Deadline
    return True


class _TimeLimit:
    __slots__ = ("_outer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._outer: tuple[float, bool] = (math.inf, False)

    def __enter__(self) -> None:
        self._outer = (_clock.deadline, _clock.expired)
        _clock.deadline = min(_clock.deadline, time.perf_counter() + self.seconds)
        _clock.expired = False

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        expired = _clock.expired
        _clock.deadline, _clock.expired = self._outer
        if expired or exc_type is _Deadline:
            raise SandboxTimeout(f"diagram code ran longer than its {self.seconds:g} s step limit") from exc


def time_limit(seconds: float) -> _TimeLimit:
    """``with time_limit(s):`` diagram code run inside raises SandboxTimeout once it passes ``s``.

    Per thread; nested limits keep the earlier deadline.
    """
    return _TimeLimit(seconds)


# -- the names diagram code sees ---------------------------------------------------------------


def _limit(kind: str, size: int, limit: int) -> None:
    if size > limit:
        raise SandboxLimitExceeded(f"{kind} of {size} would exceed the sandbox limit of {limit}")


_SEQUENCES: Final = (str, bytes, list, tuple)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _limit("a sequence", len(a) + len(b), MAX_SEQUENCE_LENGTH)
    return a + b


def _iadd(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _limit("a sequence", len(a) + len(b), MAX_SEQUENCE_LENGTH)
    a += b
    return a


def _check_mul(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int):
        _limit("an integer", a.bit_length() + b.bit_length(), MAX_INT_BITS)
    elif isinstance(a, _SEQUENCES) and isinstance(b, int):
        _limit("a sequence", len(a) * b, MAX_SEQUENCE_LENGTH)
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        _limit("a sequence", len(b) * a, MAX_SEQUENCE_LENGTH)


def _mul(a: Any, b: Any) -> Any:
    _check_mul(a, b)
    return a * b


def _imul(a: Any, b: Any) -> Any:
    _check_mul(a, b)
    a *= b
    return a


def _pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        _limit("an integer", a.bit_length() * b, MAX_INT_BITS)
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a:
        _limit("an integer", a.bit_length() + b, MAX_INT_BITS)
    return a << b


_INPLACE: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "+=": _iadd,
    "-=": operator.isub,
    "*=": _imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": _pow,
    "<<=": _lshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _write(ob: Any) -> Any:
    """Item assignment and ``del`` go through here: task data is dicts and lists, nothing else."""
    if type(ob) is dict or type(ob) is list:
        return ob
    raise TypeError(f"diagram code may change dicts and lists only, not {type(ob).__name__}")


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def _range(*args: int) -> range:
    bounded = range(*args)
    _limit("a range", len(bounded), MAX_RANGE_LENGTH)
    return bounded


def _now() -> datetime:
    """The service's time (the engine clock timers use), so scripts and timers agree."""
    return engine_now()


def _parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; write e.g. '2025-01-31T17:00:00+01:00'")
    return parsed


def _parse_duration(text: str) -> timedelta:
    check_timer_value(text)
    parsed = TimerEventDefinition.parse_iso_duration(text)
    delta: timedelta = TimerEventDefinition.get_timedelta_from_start(parsed, _now())
    return delta


def _sum(values: Any, /, start: Any = 0) -> Any:
    # The builtin adds in C, past the `+` guard: sum(lists, []) is quadratic and unbounded.
    if not isinstance(start, int | float | timedelta):
        raise TypeError("sum() in diagrams adds numbers and timedeltas only")
    return sum(values, start)


def check_timer_value(value: Any) -> None:
    """Refuse ISO 8601 durations with more than ``MAX_DURATION_MONTHS`` months in them.

    SpiffWorkflow turns a timer's years and months into days one month at a time, in host code
    that no deadline reaches: ``"P2000000Y"`` kept a worker busy for half a minute. The engine
    checks every timer expression's value; deploy validation can check constant ones.
    """
    if not isinstance(value, str):
        return
    for part in value.upper().replace("--", "/").split("/"):
        if not part.startswith("P"):
            continue
        try:
            parsed = TimerEventDefinition.parse_iso_duration(part)
        except Exception:  # malformed: SpiffWorkflow reports it itself
            continue
        months = parsed.get("years", 0) * 12 + parsed.get("months", 0)
        _limit("a duration in months", math.ceil(months), MAX_DURATION_MONTHS)


_EXPOSED_BUILTINS: Final = (
    abs, all, any, bool, chr, dict, divmod, enumerate, filter, float, frozenset, int, isinstance,
    len, list, map, max, min, ord, repr, reversed, round, set, sorted, str, tuple, zip,
    Exception, ArithmeticError, AssertionError, IndexError, KeyError, LookupError, TypeError,
    ValueError, ZeroDivisionError,
)  # fmt: skip

# The names diagram code can use; everything else, including the guards RestrictedPython's
# rewritten code calls, lives here too so one shared dict serves as `__builtins__` for every run.
DIAGRAM_NAMES: Final[Mapping[str, Any]] = {
    **{builtin.__name__: builtin for builtin in _EXPOSED_BUILTINS},
    "None": None,
    "True": True,
    "False": False,
    "range": _range,
    "sum": _sum,
    "now": _now,
    "parse_datetime": _parse_datetime,
    "parse_duration": _parse_duration,
    "timedelta": timedelta,
    "UTC": UTC,
}
_GUARDS: Final[Mapping[str, Any]] = {
    "_getattr_": safer_getattr_raise,
    "_getitem_": operator.getitem,
    "_getiter_": iter,
    "_write_": _write,
    "_apply_": _apply,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_inplacevar_": _inplacevar,
    "_add_": _add,
    "_mul_": _mul,
    "_pow_": _pow,
    "_lshift_": _lshift,
    _TICK: _tick,
}
_BUILTINS: Final[dict[str, Any]] = {**DIAGRAM_NAMES, **_GUARDS}


def restricted_globals(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A fresh globals dict for diagram code: the layers (later ones win) plus the sandbox's names."""
    namespace: dict[str, Any] = {}
    for layer in layers:
        if layer:
            namespace.update(layer)
    namespace["__builtins__"] = _BUILTINS
    return namespace


# -- running ------------------------------------------------------------------------------------


def _ticks(code: CodeType) -> bool:
    """Whether the code (or a comprehension, lambda or function inside it) checks the deadline."""
    return _TICK in code.co_names or any(isinstance(c, CodeType) and _ticks(c) for c in code.co_consts)


#: Expression text -> (its code, whether it checks the deadline). A plain dict in front of
#: `_compile`'s cache: an engine step evaluates dozens of conditions and DMN cells, and the cache's
#: key building, the strip and the checks were most of what the sandbox added to an evaluation.
_EXPRESSIONS: dict[str, tuple[CodeType, bool]] = {}


def evaluate_expression(
    source: str,
    names: Mapping[str, Any],
    *,
    external: Mapping[str, Any] | None = None,
    seconds: float = DEFAULT_STEP_TIME_LIMIT,
) -> Any:
    """Value of an expression over ``names`` (which win over ``external``); neither is changed.

    Code without ticks — no loop, comprehension, lambda or function — cannot check a deadline and
    cannot run away (every call it can make is bounded by its capped inputs), so it runs without
    setting one; code with ticks runs under the time limit.
    """
    prepared = _EXPRESSIONS.get(source) if type(source) is str else None
    if prepared is None:
        code = compile_expression(source)  # a violation raises here, every time, as before
        if len(_EXPRESSIONS) >= _CACHE_SIZE:
            _EXPRESSIONS.clear()
        prepared = _EXPRESSIONS[source] = (code, _ticks(code))
    code, timed = prepared
    namespace = {**external, **names, "__builtins__": _BUILTINS} if external else {**names, "__builtins__": _BUILTINS}
    if not timed:
        return eval(code, namespace)
    with time_limit(seconds):
        return eval(code, namespace)


def execute_script(source: str, data: MutableMapping[str, Any], *, seconds: float = DEFAULT_STEP_TIME_LIMIT) -> None:
    """Run a script whose top-level assignments land in ``data`` (a task's data)."""
    code = compile_script(source)
    data["__builtins__"] = _BUILTINS
    try:
        with time_limit(seconds):
            exec(code, data)  # type: ignore[arg-type]  # exec wants a dict; task data is one
    finally:
        data.pop("__builtins__", None)


class SandboxedEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """SpiffWorkflow's script environment, sandboxed.

    The engine's ``evaluate``/``execute`` call this, and so do SpiffWorkflow's direct callers of
    ``script_engine.environment.evaluate`` (message correlation, process completion conditions).
    """

    def __init__(
        self, step_time_limit: float = DEFAULT_STEP_TIME_LIMIT, names: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__({})
        self.step_time_limit = step_time_limit
        #: Functions the service offers diagram code (e.g. `due`), below task data and external context.
        self.names = dict(names or {})

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        # Task data wins over external context (data objects, DMN's `?`), as in SpiffWorkflow's own.
        external = {**self.names, **external_context} if external_context else self.names
        return evaluate_expression(expression, context, external=external, seconds=self.step_time_limit)

    def execute(self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> bool:
        external = {**self.names, **(external_context or {})}
        clashes = sorted(set(external).intersection(context))
        if clashes:
            raise ValueError(f"task data overwrites predefined names: {clashes}")
        context.update(external)
        try:
            execute_script(script, context, seconds=self.step_time_limit)
        finally:
            # Functions a script defined cannot be serialized with the instance; drop them too.
            for key in [k for k, v in context.items() if k in external or callable(v)]:
                del context[key]
        return True


class SandboxedScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """The script engine to give every BpmnWorkflow, also after each restore from storage.

    Errors surface as SpiffWorkflow's WorkflowTaskException naming the task (hence the diagram
    element), which the service turns into an incident on that step.
    """

    def __init__(
        self, step_time_limit: float = DEFAULT_STEP_TIME_LIMIT, names: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(environment=SandboxedEnvironment(step_time_limit, names))

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        try:
            value = self.environment.evaluate(expression, task.data, external_context)
            timer = getattr(task.task_spec, "event_definition", None)
            if isinstance(timer, TimerEventDefinition) and expression == timer.expression:
                check_timer_value(value)
            return value
        except SpiffWorkflowException as error:
            error.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as error:
            # Unlike the base class, say what went wrong: this text becomes the incident's.
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {type(error).__name__}: {error}",
                task=task,
                exception=error,
            ) from error

    def get_error_line_number_and_content(self, script: str, err: BaseException) -> tuple[int, str]:
        """The failing line of a script: its last frame in diagram code (the base class looks for
        SpiffWorkflow's own "<string>" frames)."""
        if isinstance(err, SyntaxError):
            return err.lineno or 0, err.text or ""
        line_number = 0
        for error in (err, err.__cause__ or err.__context__):
            if error is not None and error.__traceback__ is not None:
                for frame in traceback.extract_tb(error.__traceback__):
                    if frame.filename == SANDBOX_FILENAME and frame.lineno:
                        line_number = frame.lineno
        lines = script.splitlines()
        return line_number, lines[line_number - 1] if 0 < line_number <= len(lines) else ""

    def create_task_exec_exception(self, task: Any, script: str, err: BaseException) -> Any:
        if isinstance(err, SpiffWorkflowException):
            return super().create_task_exec_exception(task, script, err)
        # The base class glues err.args[0] to a str, which itself fails on KeyError(5).
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        return WorkflowTaskException(
            f"{type(err).__name__}: {err}", task=task, exception=err, line_number=line_number, error_line=error_line
        )
