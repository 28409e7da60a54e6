"""Render dbt's Jinja at import time with real Jinja2, so the models written are plain SQL.

`ref()` and `source()` become table names, `config()` is captured, `var()`, `env_var()`,
`target` and `this` take fixed values, and the project's macros (`macros/**/*.sql`) are
callable as `name(...)` and `<project>.name(...)`. Anything unknown — a package's macro,
`run_query`, `adapter` — renders as its own Jinja text (which headwater refuses, naming the
line) and is flagged in the report with the file and line it was called from.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.ext

from headwater.change.dbt import shims
from headwater.change.dbt.layout import DbtProject
from headwater.change.dbt.report import Report
from headwater.contracts.load import read_text
from headwater.errors import Location, SpecError

# where `this` points while rendering the incremental branch, to find its filters
THIS_MARKER = "__hw_this__"
_TEST_BLOCK = re.compile(r"\{%(-?)\s*test\s+(\w+)")
_END_TEST = re.compile(r"\{%(-?)\s*endtest\s*(-?)%\}")
_DOCS = re.compile(r"\{%-?\s*docs\s+(\w+)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}", re.DOTALL)

Lookup = Callable[..., str | None]
# what a template may raise while rendering: the user's Jinja, not our code, failed
_RENDER_ERRORS = (
    jinja2.TemplateError,
    shims.CompilerError,
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
)


@dataclass
class Rendered:
    """One model rendered: its SQL, the `config()` it set, whether anything was left unknown."""

    sql: str
    config: dict[str, Any] = field(default_factory=dict)
    unknown: bool = False  # some construct rendered as its Jinja text (flagged in the report)
    uses_incremental: bool = False  # the model calls is_incremental()


class _Return(Exception):
    """dbt's `{{ return(x) }}` inside a macro: control flow, carrying `x` to the caller."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Relation(str):
    """A table name that also answers dbt's relation attributes (`.identifier`, `.schema`)."""

    __slots__ = ()

    @property
    def schema(self) -> str:
        return self.split(".")[0]

    @property
    def identifier(self) -> str:
        return self.split(".")[-1]

    name = identifier
    table = identifier

    @property
    def database(self) -> str:
        return ""


class Placeholder(str):
    """What an unknown construct renders as: its Jinja text, which a template may go on
    calling, indexing or reading attributes of (`run_query(...).columns[0]`) without failing
    again; it was flagged once, where it was first used."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Placeholder:
        return self

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Placeholder:
        return self

    def __iter__(self) -> Any:
        return iter(())


class Namespace:
    """An object whose attributes are functions (`dbt_utils.x`); a missing one is unknown."""

    def __init__(self, name: str, members: dict[str, Any], unknown: type[jinja2.Undefined]):
        self._name = name
        self._members = members
        self._unknown = unknown

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._members:
            return self._members[attr]
        return self._unknown(name=f"{self._name}.{attr}")


class _Target(Namespace):
    """dbt's `target`, as a local `dev` target; each use is flagged, as the SQL it picks is
    fixed at import (a `{% if target.name == 'prod' %}` branch is never taken)."""

    def __init__(self, project: str, renderer: Renderer) -> None:
        super().__init__("target", shims.target(project), renderer.env.undefined)
        self._renderer = renderer

    def __getattr__(self, attr: str) -> Any:
        value = super().__getattr__(attr)
        if not attr.startswith("__"):
            file, line = self._renderer._caller()
            self._renderer.report.flag(
                file,
                line,
                f"`target.{attr}`",
                f"rendered as {value!r} (a local dev target); write the SQL every run should use",
            )
        return value


class _Unknown(jinja2.Undefined):
    """What an unknown name renders as: its own Jinja text, flagged where it was used."""

    renderer: Renderer

    def _dotted(self) -> str:
        owner = self._undefined_obj
        name = self._undefined_name or "?"
        if isinstance(owner, Namespace):
            return f"{owner._name}.{name}"
        if isinstance(owner, _Unknown):
            return f"{owner._dotted()}.{name}"
        return name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(self)(obj=self, name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        named = (f"{k}={v!r}" for k, v in kwargs.items() if k != "caller")
        shown = ", ".join([*map(repr, args), *named])
        text = f"{self._dotted()}({shown})"
        return self.renderer.unknown(f"`{self._dotted()}(...)`", text, "macro")

    def __str__(self) -> str:
        return self.renderer.unknown(f"`{self._dotted()}`", self._dotted(), "variable")


class _Config:
    """dbt's `config`: called with settings in a model, read with `.get` in macros."""

    def __init__(self, given: dict[str, Any], defaults: dict[str, Any]) -> None:
        self._given = given
        self._defaults = defaults

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        for arg in args:
            if isinstance(arg, dict):
                self._given.update(arg)
        self._given.update(kwargs)
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        return self._given.get(key, self._defaults.get(key, default))

    def require(self, key: str) -> Any:
        return self.get(key)


class Renderer:
    """One Jinja2 environment for a dbt project: its macros, docs and functions."""

    def __init__(self, project: DbtProject, *, ref: Lookup, source: Lookup, report: Report) -> None:
        self.project = project
        self.report = report
        self._file = ""  # the file being rendered, for findings
        self._unknowns = 0
        self._sources: dict[str, str] = {}
        self.env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load),
            cache_size=0,
            extensions=[jinja2.ext.do, jinja2.ext.loopcontrols],
            undefined=type("Unknown", (_Unknown,), {"renderer": self}),
            keep_trailing_newline=True,
        )
        self.namespace: dict[str, Any] = {}
        self._fill_namespace(ref, source)
        self._docs = self._read_docs()
        self._load_macros()

    # ---- public -------------------------------------------------------------------------------

    def render_model(
        self, shown: str, text: str, *, this: str, defaults: dict[str, Any]
    ) -> tuple[Rendered, Rendered | None]:
        """Render a model as a full build, and (if it calls `is_incremental()`) as an
        incremental run whose `this` is `__hw_this__.<name>`; unknown constructs are flagged.

        Raises:
            SpecError: the model's Jinja does not parse (naming its file and line).
        """
        template = self._template(shown, text)
        full = self._render(template, shown, this=this, defaults=defaults, incremental=False)
        if not full.uses_incremental:
            return full, None
        marker = f"{THIS_MARKER}.{this.split('.')[-1]}"
        saved = self.report.findings.copy()
        try:
            step = self._render(template, shown, this=marker, defaults=defaults, incremental=True)
        finally:
            self.report.findings = saved  # the full build's findings are the ones that matter
        return full, step

    def render_text(self, text: str, shown: str) -> str:
        """A string of YAML (a test argument, a `where:`) rendered like a model's text."""
        if "{{" not in text and "{%" not in text:
            return text
        self._file = shown
        try:
            return self.env.from_string(text).render(self.namespace)
        except _RENDER_ERRORS as err:
            message = getattr(err, "message", None) or str(err)
            self.report.flag(shown, None, f"`{text}`", f"could not render it ({message})")
            return text

    def expression(self, text: str, shown: str) -> str:
        """A YAML value dbt evaluates as a Jinja expression (`to: ref('customers')`)."""
        return self.render_text("{{ " + text + " }}", shown)

    def unknown(self, construct: str, text: str, what: str) -> str:
        """Flag an unknown macro or variable where it is used; its Jinja text stays in the SQL."""
        self._unknowns += 1
        file, line = self._caller()
        action = (
            "a macro headwater does not know (from a dbt package?): write out the SQL it makes"
            if what == "macro"
            else "an unknown variable: write its value into the SQL"
        )
        self.report.flag(file, line, construct, action)
        return Placeholder("{{ " + text + " }}")

    # ---- the environment ----------------------------------------------------------------------

    def _fill_namespace(self, ref: Lookup, source: Lookup) -> None:
        unknown = self.env.undefined

        def wrap(fn: Lookup, label: str) -> Callable[..., str]:
            def call(*args: Any, **kwargs: Any) -> str:
                found = fn(*args, **kwargs)
                if found is not None:
                    return _Relation(found)
                shown = ", ".join(map(repr, args))
                file, line = self._caller()
                self._unknowns += 1
                self.report.flag(
                    file, line, f"`{label}({shown})`", f"no such {label} in the dbt project"
                )
                return Placeholder("{{ " + f"{label}({shown})" + " }}")

            return call

        macros = shims.functions()
        self.namespace.update(macros)
        self.namespace.update(
            ref=wrap(ref, "ref"),
            source=wrap(source, "source"),
            var=self._var,
            env_var=self._env_var,
            doc=self._doc,
            log=lambda *a, **k: "",
            print=lambda *a, **k: "",
            execute=True,
            flags=Namespace("flags", {"FULL_REFRESH": False, "WHICH": "build"}, unknown),
            modules=Namespace("modules", shims.modules(), unknown),
            exceptions=Namespace("exceptions", shims.exceptions(), unknown),
            target=_Target(self.project.name, self),
            project_name=self.project.name,
            dbt=Namespace("dbt", dict(macros), unknown),
            dbt_utils=Namespace("dbt_utils", shims.dbt_utils(), unknown),
            zip=zip,
            set=set,
            tojson=shims.tojson,
            fromjson=shims.fromjson,
        )
        self.namespace["return"] = _raise_return

    def _load_macros(self) -> None:
        own: dict[str, Any] = {}
        for path in self.project.files(self.project.macro_paths, ".sql"):
            shown = self.project.shown(path)
            text = _generic_tests_as_macros(read_text(path, shown=shown))
            module = self._template(shown, text).make_module(self.namespace, shared=True)
            for name in dir(module):
                value = getattr(module, name)
                if isinstance(value, jinja2.runtime.Macro):
                    own[name] = _returning(value)
        self.macros = own
        self.namespace.update(own)  # the project's macros win over the shims of the same name
        self.namespace[self.project.name] = Namespace(self.project.name, own, self.env.undefined)

    def _load(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        """Templates are named by their path in the dbt project, so tracebacks and findings
        name the file."""
        text = self._sources.get(name)
        return None if text is None else (text, name, lambda: False)

    def _template(self, shown: str, text: str) -> jinja2.Template:
        self._sources[shown] = text
        try:
            return self.env.get_template(shown)
        except jinja2.TemplateSyntaxError as err:
            raise SpecError(
                f"Jinja syntax error: {err.message}",
                where=Location(shown, err.lineno),
                hint="fix the template in the dbt project, then import again",
            ) from None

    def _render(
        self,
        template: jinja2.Template,
        shown: str,
        *,
        this: str,
        defaults: dict[str, Any],
        incremental: bool,
    ) -> Rendered:
        given: dict[str, Any] = {}
        called = []
        self._file = shown
        self._unknowns = 0

        def is_incremental() -> bool:
            called.append(True)
            return incremental

        self.namespace.update(
            config=_Config(given, defaults),
            this=_Relation(this),
            model=Namespace("model", {"name": this.split(".")[-1]}, self.env.undefined),
            is_incremental=is_incremental,
        )
        try:
            sql = template.render(self.namespace)
        except _RENDER_ERRORS as err:
            file, line = _error_line(err, shown)
            message = getattr(err, "message", None) or str(err)
            self.report.flag(
                file, line, "Jinja that failed to render", f"{message}; write the SQL by hand"
            )
            return Rendered(self._sources[shown], given, unknown=True)
        return Rendered(sql, given, unknown=self._unknowns > 0, uses_incremental=bool(called))

    def _caller(self) -> tuple[str, int | None]:
        """The template file and line the current Python call was made from."""
        frame = sys._getframe(1)
        while frame is not None:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None and template.name in self._sources:
                return template.name, template.get_corresponding_lineno(frame.f_lineno)
            frame = frame.f_back  # type: ignore[assignment]
        return self._file, None

    # ---- functions ----------------------------------------------------------------------------

    def _var(self, name: str, default: Any = None) -> Any:
        if name in self.project.vars:
            return self.project.vars[name]
        if default is not None:
            return default
        return self.unknown(f"`var({name!r})`", f"var({name!r})", "variable")

    def _env_var(self, name: str, default: Any = None) -> Any:
        value = os.environ.get(name, default)
        file, line = self._caller()
        if value is None:
            return self.unknown(f"`env_var({name!r})`", f"env_var({name!r})", "variable")
        self.report.flag(
            file,
            line,
            f"`env_var({name!r})`",
            "its value at import time is written into the SQL; headwater SQL reads no "
            "environment variables, so check it is the value every run should use",
        )
        return value

    def _doc(self, name: str) -> str:
        if name in self._docs:
            return self._docs[name]
        return self.unknown(f"`doc({name!r})`", f"doc({name!r})", "variable")

    def _read_docs(self) -> dict[str, str]:
        docs: dict[str, str] = {}
        paths = (*self.project.model_paths, *self.project.macro_paths, "docs")
        for path in self.project.files(paths, ".md"):
            for match in _DOCS.finditer(read_text(path, shown=self.project.shown(path))):
                docs[match[1]] = match[2].strip()
        return docs


def _raise_return(value: Any = None) -> None:
    raise _Return(value)


def _returning(macro: Callable[..., Any]) -> Callable[..., Any]:
    """A macro whose `{{ return(x) }}` gives `x` to its caller, as dbt's macros do."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return macro(*args, **kwargs)
        except _Return as done:
            return done.value

    return call


def _generic_tests_as_macros(text: str) -> str:
    """`{% test name(...) %}` blocks (dbt's generic tests) read as macros `test_name`, so a
    macro file holding them compiles; lines are kept."""
    text = _TEST_BLOCK.sub(lambda m: "{%" + m[1] + " macro test_" + m[2], text)
    return _END_TEST.sub(lambda m: "{%" + m[1] + " endmacro " + m[2] + "%}", text)


def _error_line(err: BaseException, shown: str) -> tuple[str, int | None]:
    """The template file and line a rendering error was raised at (Jinja rewrites tracebacks
    so their frames name the template's own lines)."""
    found: tuple[str, int | None] = (shown, getattr(err, "lineno", None))
    tb = err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename and not code.co_filename.endswith((".py", ">")):
            found = (code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found
