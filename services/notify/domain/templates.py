"""Message templates (`bpmn/notify/templates/`): Jinja2 in a sandbox, one small file per part.

    <name>.<locale>.txt.j2       the plain text (required; zh-CN is required for every name)
    <name>.<locale>.subject.j2   the subject (optional: `_subject.<locale>.subject.j2` otherwise)
    <name>.<locale>.html.j2      the HTML (optional: the text inside `_layout.<locale>.html.j2` otherwise)

Names starting with `_` are shared parts, not notices. Every e-mail of a ticket shares one subject
(`_subject`, SOP §10), so that mail clients thread them; the first line of the text says what the
notice is. HTML is escaped automatically; text and subject are not (they are not HTML). A locale
a template does not have falls back to the same language (en-US → en), then to zh-CN.

The sandbox (`ImmutableSandboxedEnvironment`) refuses attribute tricks (`''.__class__`), calls to
unsafe methods and changes to the variables; it also caps repetition (`'x' * 10**9`) and powers.
Undefined names fail (StrictUndefined) instead of printing nothing. A template is checked when
loaded: syntax, the variables it uses (`variables.TEMPLATE_VARIABLES` and their fields), the files
it includes; rendering can still fail on data (`TemplateError`, naming file and line).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Final

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, meta, nodes, pass_context
from jinja2 import TemplateSyntaxError as JinjaSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from services.notify.domain import labels
from services.notify.domain.directory import FALLBACK_LOCALE
from services.notify.domain.errors import TemplateError, TemplateSetError
from services.notify.domain.problems import Problems, one_of, suggest
from services.notify.domain.variables import FIELDS, HTML_VARIABLES, TEMPLATE_VARIABLES

FILE_NAME: Final = re.compile(
    r"^(?P<name>_?[a-z][a-z0-9_]*)\.(?P<locale>[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)\.(?P<part>subject|txt|html)\.j2$"
)
SUBJECT: Final = "_subject"
LAYOUT: Final = "_layout"
MAX_FILES: Final = 1000
MAX_FILE_BYTES: Final = 64 * 1024
#: Longest string or list a template may build by repetition; largest exponent.
MAX_REPEAT: Final = 100_000
MAX_EXPONENT: Final = 64


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    #: The locale actually used (after fallback), for the notification record.
    locale: str


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """Validated template files, ready to render. Build with `load_template_set`."""

    sources: Mapping[str, str]
    #: Notice name → the locales it has a text part in.
    catalog: Mapping[str, frozenset[str]]
    env: Environment = field(compare=False, repr=False)
    #: Prefix of file names in messages, e.g. "templates/".
    prefix: str = ""

    def locale_for(self, name: str, locale: str) -> str | None:
        """The locale `name` renders in for a reader of `locale`; None when there is no such template."""
        have = self.catalog.get(name)
        if not have:
            return None
        if locale in have:
            return locale
        language = locale.split("-")[0].lower()
        same = sorted(loc for loc in have if loc.split("-")[0].lower() == language)
        if same:
            return same[0]
        return FALLBACK_LOCALE if FALLBACK_LOCALE in have else None


def load_template_set(files: Mapping[str, bytes], *, prefix: str = "templates/") -> TemplateSet:
    """Validate and compile template files (bare file names → content); raises TemplateSetError
    naming every problem with file and line."""
    problems = Problems()
    sources: dict[str, str] = {}
    if len(files) > MAX_FILES:
        problems.add(prefix, "", f"{len(files)} files; at most {MAX_FILES}")
    for name in sorted(files):
        content = files[name]
        where = prefix + name
        if not FILE_NAME.match(name):
            problems.add(
                where, "", "not a template file name: <name>.<locale>.<subject|txt|html>.j2, e.g. receipt.zh-CN.txt.j2"
            )
            continue
        if len(content) > MAX_FILE_BYTES:
            problems.add(where, "", f"{len(content):,} bytes; a template may have at most {MAX_FILE_BYTES:,}")
            continue
        try:
            sources[name] = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            problems.add(where, "", "not UTF-8: save the file as UTF-8")
    env = _environment(sources)
    for name, source in sources.items():
        _check_template(env, name, source, prefix, sources, problems)
    catalog = _catalog(sources, prefix, problems)
    if problems:
        raise TemplateSetError(problems.items)
    return TemplateSet(MappingProxyType(sources), MappingProxyType(catalog), env, prefix)


def render(template_set: TemplateSet, name: str, locale: str, variables: Mapping[str, Any]) -> RenderedMessage:
    """Render notice `name` for a reader of `locale`; raises TemplateError naming file and line."""
    used = template_set.locale_for(name, locale)
    if used is None:
        known = one_of(template_set.catalog)
        raise TemplateError(
            f"{template_set.prefix}{name}.{FALLBACK_LOCALE}.txt.j2", None, f"no such template (known: {known})"
        )
    values = {**variables, "locale": used}
    values.setdefault("time_zone", "Asia/Shanghai")
    text = _render(template_set, f"{name}.{used}.txt.j2", values).strip() + "\n"
    subject_file = _first(template_set, f"{name}.{used}.subject.j2", f"{SUBJECT}.{used}.subject.j2")
    subject = " ".join(_render(template_set, subject_file, values).split())
    html_file = f"{name}.{used}.html.j2"
    if html_file in template_set.sources:
        html = _render(template_set, html_file, {**values, "subject": subject})
    else:
        layout = _first(template_set, f"{LAYOUT}.{used}.html.j2")
        html = _render(template_set, layout, {**values, "subject": subject, "body": text_to_html(text)})
    return RenderedMessage(subject, text, html, used)


def text_to_html(text: str) -> Markup:
    """Plain text as HTML: blank lines separate paragraphs; a block of "- " lines is a list, of
    "1. " lines a numbered list; links become clickable. Everything is escaped."""
    out: list[str] = []
    for block in re.split(r"\n[ \t]*\n", text.strip()):
        lines = [line.rstrip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_inline(_BULLET.sub('', line))}</li>" for line in lines)
            out.append(f"<ul>{items}</ul>")
        elif all(_NUMBERED.match(line) for line in lines):
            items = "".join(f"<li>{_inline(_NUMBERED.sub('', line))}</li>" for line in lines)
            out.append(f"<ol>{items}</ol>")
        else:
            out.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    return Markup("\n".join(out))


_BULLET = re.compile(r"^\s*[-•*]\s+")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.、)]\s*")
_LINK = re.compile(r"https?://[^\s<>\"'）】]+")


def _inline(line: str) -> str:
    escaped = str(escape(line))
    return _LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)


# -- environment ----------------------------------------------------------------------------------


class _Loader(BaseLoader):
    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        if template not in self.sources:
            raise TemplateNotFound(template)
        # The file name doubles as the code's file name: render errors point at it (see _where).
        return self.sources[template], template, lambda: True


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"repetition would build {len(seq) * times:,} items (at most {MAX_REPEAT:,})")
        return super().call_binop(context, operator, left, right)


def _environment(sources: Mapping[str, str]) -> Environment:
    env = _Sandbox(
        loader=_Loader(sources),
        undefined=StrictUndefined,
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),
        finalize=lambda value: "" if value is None else value,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["label"] = _label
    env.filters["duration"] = _duration
    env.filters["seconds"] = _seconds
    env.filters["datetime"] = _datetime
    env.filters["name"] = _name
    return env


@pass_context
def _label(context: Context, value: Any, kind: str) -> str:
    return labels.label(str(value), kind, str(context.get("locale", FALLBACK_LOCALE)))


@pass_context
def _duration(context: Context, value: Any, business: bool = False) -> str:
    return labels.duration(str(value or ""), str(context.get("locale", FALLBACK_LOCALE)), business=business)


@pass_context
def _seconds(context: Context, value: Any) -> str:
    return labels.seconds(int(value), str(context.get("locale", FALLBACK_LOCALE)))


@pass_context
def _name(context: Context, value: Any) -> str:
    names = context.get("names") or {}
    return str(names.get(value, value)) if isinstance(names, Mapping) else str(value)


@pass_context
def _datetime(context: Context, value: Any) -> str:
    if value is None or value == "":
        return ""
    locale = str(context.get("locale", FALLBACK_LOCALE))
    return labels.moment(value, locale, str(context.get("time_zone", "Asia/Shanghai")))


# -- checks at load ----------------------------------------------------------------------------------


def _check_template(
    env: Environment, name: str, source: str, prefix: str, sources: Mapping[str, str], problems: Problems
) -> None:
    where = prefix + name
    try:
        tree = env.parse(source, name, name)
        env.compile(tree, name, name)
    except JinjaSyntaxError as exc:
        problems.add(where, f"line {exc.lineno}", exc.message or "syntax error")
        return
    allowed = TEMPLATE_VARIABLES | set(env.globals)
    if name.endswith(".html.j2"):
        allowed |= HTML_VARIABLES
    for variable in sorted(meta.find_undeclared_variables(tree) - allowed):
        problems.add(
            where,
            f"line {_line_of(tree, variable)}",
            f"unknown variable '{variable}'{suggest(variable, TEMPLATE_VARIABLES)}"
            f" (templates see: {one_of(TEMPLATE_VARIABLES)})",
        )
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in FIELDS and node.attr not in FIELDS[node.node.name]:
            known = FIELDS[node.node.name]
            problems.add(
                where,
                f"line {node.lineno}",
                f"'{node.node.name}' has no field '{node.attr}'{suggest(node.attr, known)} (it has: {one_of(known)})",
            )
    for referenced in meta.find_referenced_templates(tree):
        if referenced is None:
            problems.add(where, "", "include, import and extends need a literal file name")
        elif referenced not in sources:
            problems.add(
                where, "", f"uses '{referenced}', which is not a template file{_similar_file(referenced, sources)}"
            )


def _similar_file(wanted: str, sources: Mapping[str, str]) -> str:
    """A hint naming a file of the same locale and part whose name is close to `wanted`'s."""
    name, _, tail = wanted.partition(".")
    same_kind = {file.partition(".")[0]: file for file in sources if file.partition(".")[2] == tail}
    close = difflib.get_close_matches(name, list(same_kind), n=1, cutoff=0.75)
    return f" (did you mean '{same_kind[close[0]]}'?)" if close else ""


def _line_of(tree: nodes.Template, variable: str) -> int:
    for node in tree.find_all(nodes.Name):
        if node.name == variable and node.ctx == "load":
            return int(node.lineno)
    return 1


def _catalog(sources: Mapping[str, str], prefix: str, problems: Problems) -> dict[str, frozenset[str]]:
    parts: dict[tuple[str, str], set[str]] = {}
    for name in sources:
        match = FILE_NAME.match(name)
        if match:
            parts.setdefault((match["name"], match["locale"]), set()).add(match["part"])
    catalog: dict[str, set[str]] = {}
    for (name, locale), have in sorted(parts.items()):
        if name.startswith("_"):
            continue
        if "txt" not in have:
            for part in sorted(have):
                problems.add(
                    f"{prefix}{name}.{locale}.{part}.j2", "", f"there is no {name}.{locale}.txt.j2 to go with it"
                )
            continue
        catalog.setdefault(name, set()).add(locale)
    for name, locales in sorted(catalog.items()):
        if FALLBACK_LOCALE not in locales:
            problems.add(
                f"{prefix}{name}.{FALLBACK_LOCALE}.txt.j2",
                "",
                f"missing: every template needs a {FALLBACK_LOCALE} version, used when a reader's locale has none"
                f" (has: {one_of(locales)})",
            )
    for shared, part in ((SUBJECT, "subject"), (LAYOUT, "html")):
        if f"{shared}.{FALLBACK_LOCALE}.{part}.j2" not in sources:
            problems.add(
                f"{prefix}{shared}.{FALLBACK_LOCALE}.{part}.j2", "", "missing: the shared default every notice uses"
            )
    return {name: frozenset(locales) for name, locales in catalog.items()}


# -- rendering --------------------------------------------------------------------------------------


def _first(template_set: TemplateSet, *candidates: str) -> str:
    """The first candidate that exists, else the zh-CN version of the last one (always there)."""
    for candidate in candidates:
        if candidate in template_set.sources:
            return candidate
    return re.sub(r"\.[^.]+\.(subject|txt|html)\.j2$", rf".{FALLBACK_LOCALE}.\1.j2", candidates[-1])


def _render(template_set: TemplateSet, file: str, values: Mapping[str, Any]) -> str:
    try:
        return template_set.env.get_template(file).render(values)
    except UndefinedError as exc:
        raise TemplateError(*_where(template_set, file, exc), f"undefined: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(*_where(template_set, file, exc), f"not allowed in a template: {exc}") from None
    except Exception as exc:  # any failure of a template is the template's: the notice fails, not the service
        raise TemplateError(*_where(template_set, file, exc), f"{type(exc).__name__}: {exc}") from None


def _where(template_set: TemplateSet, file: str, exc: BaseException) -> tuple[str, int | None]:
    """The innermost template frame of the traceback (Jinja maps its lines to the template's)."""
    found: tuple[str, int | None] = (file, None)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        code_file = tb.tb_frame.f_code.co_filename
        if code_file in template_set.sources:
            found = (code_file, tb.tb_lineno)
        tb = tb.tb_next
    return template_set.prefix + found[0], found[1]
