"""MkDocs hook: the parts of the docs that are read from the source, so they cannot drift.

* The capability matrix: every ``notimpl`` / ``never`` marker of the conformance suite
  (``src/vecbridge/testing/test_*.py``), read with :mod:`ast`, and every entry of the
  suite's gap tables (``src/vecbridge/testing/gaps.py``, imported: the tables the tests
  decide with), one row per marked test or table entry, one column per backend family
  of ``BACKENDS`` in ``tests/conformance/conftest.py``.
* On each backend page: that backend's gaps, its declared index types and options
  (imported from its client class, see ``declared.py``) and its client docstring.

A page asks for them with HTML comments, replaced at build time::

    <!-- vecbridge:capabilities -->      the whole matrix
    <!-- vecbridge:gaps FAMILY -->       the gaps of one backend family, as a list
    <!-- vecbridge:backend FAMILY -->    index types and module docstring of its client
    <!-- vecbridge:native-scores -->     what each backend's engine returns, per metric
    <!-- vecbridge:cli COMMAND -->       the output of `vecbridge COMMAND --help`
    <!-- vecbridge:forms -->             the backend families and forms of the conformance run

A marker whose backends are not a literal or a module-level constant stops the build
(:class:`MarkerError`); a marker placed where this module cannot tell which test it
applies to, a backend name that ``BACKENDS`` does not know, and an unknown placeholder
are warnings, which fail ``mkdocs build --strict``.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger("mkdocs.hooks.capabilities")

KINDS = ("notimpl", "never")
ROOT = Path(__file__).resolve().parents[2]
TESTING_DIR = Path("src/vecbridge/testing")
CONFTEST = Path("tests/conformance/conftest.py")
GAPS_MODULE = TESTING_DIR / "gaps.py"
BACKENDS_DIR = Path("src/vecbridge/backends")

_PLACEHOLDER = re.compile(
    r"<!--\s*vecbridge:(capabilities|gaps|backend|native-scores|cli|forms)(?:\s+([A-Za-z0-9_-]+))?\s*-->")


class MarkerError(ValueError):
    """A gap marker whose backends or reason cannot be read without running the code."""


@dataclass(frozen=True)
class Gap:
    """One ``notimpl``/``never`` marker applied to one test (or one parameter of it)."""

    module: str  # "test_filters"
    test: str  # "test_x", "test_x[param-id]", "TestClass", or "*" (the whole module)
    kind: str  # "notimpl" or "never"
    backends: tuple[str, ...]
    reason: str
    raises: str | None = None
    line: int = 0
    used_by: tuple[str, ...] = ()  # a gap-table entry: the tests that decide with it

    @property
    def label(self) -> str:
        if self.module == "gaps":
            return f"gaps.py: {self.test}"
        if self.test == "*":
            return f"{self.module}.py (every test)"
        return f"{self.module}.py::{self.test}"

    def applies_to(self, family: str) -> tuple[str, ...]:
        """The names in this marker that select ``family`` (the family itself or its forms)."""
        return tuple(b for b in self.backends if b == family or b.split("-", 1)[0] == family)


@dataclass
class Suite:
    """What the generator knows: the gaps, the number of tests, the configured backends."""

    gaps: list[Gap]
    tests: int
    forms: dict[str, list[str]]  # family -> forms ("faiss" -> ["faiss-memory", "faiss-disk"])
    modules: dict[str, str] = field(default_factory=dict)  # family -> backend module name
    warnings: list[str] = field(default_factory=list)
    root: Path = ROOT

    @property
    def families(self) -> list[str]:
        return sorted(self.forms)


# -- reading the test modules -----------------------------------------------------------

def _module_env(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level ``NAME = expr`` bindings, to resolve constants and prebuilt marks."""
    env: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    env[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            env[node.target.id] = node.value
    return env


def _value(node: ast.expr, env: dict[str, ast.expr], where: str, depth: int = 0) -> Any:
    """The value of a literal, a module-level constant, or ``+`` of those."""
    if depth > 10:
        raise MarkerError(f"{where}: constants refer to each other too deeply")
    if isinstance(node, ast.Name) and node.id in env:
        return _value(env[node.id], env, where, depth + 1)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_value(e, env, where, depth + 1) for e in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, env, where, depth + 1) + _value(node.right, env, where, depth + 1)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise MarkerError(f"{where}: {ast.unparse(node)!r} is not a literal or a module-level constant") from None


def _mark_kind(func: ast.expr, aliases: dict[str, str]) -> str | None:
    if isinstance(func, ast.Attribute) and func.attr in KINDS:
        return func.attr  # pytest.mark.notimpl, mark.never
    if isinstance(func, ast.Name):
        return aliases.get(func.id)  # notimpl = pytest.mark.notimpl
    return None


class _Reader:
    """Collects the gap markers of one test module."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.module = path.stem
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.env = _module_env(self.tree)
        self.aliases = {name: value.attr for name, value in self.env.items()
                        if isinstance(value, ast.Attribute) and value.attr in KINDS}
        self.used: set[int] = set()
        self.gaps: list[Gap] = []
        self.tests = 0

    def where(self, node: ast.AST) -> str:
        return f"{self.path.name}:{getattr(node, 'lineno', 0)}"

    def marks(self, node: ast.expr, depth: int = 0) -> list[tuple[str, ast.Call]]:
        """The gap marks in a decorator / ``marks=`` / ``pytestmark`` expression."""
        if depth > 10:
            return []
        if isinstance(node, ast.Name) and node.id in self.env:
            return self.marks(self.env[node.id], depth + 1)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [m for e in node.elts for m in self.marks(e, depth + 1)]
        if isinstance(node, ast.Call):
            kind = _mark_kind(node.func, self.aliases)
            if kind:
                return [(kind, node)]
        return []

    def gap(self, kind: str, call: ast.Call, test: str) -> Gap:
        self.used.add(id(call))
        where = self.where(call)
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        target = call.args[0] if call.args else kw.get("backends")
        if target is None:
            raise MarkerError(f"{where}: @{kind} names no backends")
        backends = _value(target, self.env, where)
        backends = (backends,) if isinstance(backends, str) else tuple(str(b) for b in backends)
        reason_node = kw.get("reason") or (call.args[1] if len(call.args) > 1 else None)
        if reason_node is None:
            reason = ""
        else:
            try:
                reason = str(_value(reason_node, self.env, where))
            except MarkerError:
                reason = ast.unparse(reason_node)  # an f-string or an expression: show its source
        raises = ast.unparse(kw["raises"]) if "raises" in kw else None
        return Gap(self.module, test, kind, backends, " ".join(reason.split()), raises, call.lineno)

    def params(self, decorator: ast.expr, test: str) -> None:
        """Marks given to ``pytest.param(..., marks=...)`` inside ``@pytest.mark.parametrize``."""
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "parametrize"):
            return
        kw = {k.arg: k.value for k in decorator.keywords if k.arg}
        values = decorator.args[1] if len(decorator.args) > 1 else kw.get("argvalues")
        if isinstance(values, ast.Name):
            values = self.env.get(values.id)
        if not isinstance(values, (ast.List, ast.Tuple)):
            return
        for i, item in enumerate(values.elts):
            if not (isinstance(item, ast.Call) and (
                    (isinstance(item.func, ast.Attribute) and item.func.attr == "param")
                    or (isinstance(item.func, ast.Name) and item.func.id == "param"))):
                continue
            pkw = {k.arg: k.value for k in item.keywords if k.arg}
            if "marks" not in pkw:
                continue
            if "id" in pkw and isinstance(pkw["id"], ast.Constant):
                pid = str(pkw["id"].value)
            else:
                pid = "-".join(ast.unparse(a) for a in item.args) or str(i)
                pid = pid if len(pid) <= 60 else pid[:57] + "..."
            for kind, call in self.marks(pkw["marks"]):
                self.gaps.append(self.gap(kind, call, f"{test}[{pid}]"))

    def decorated(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, name: str) -> None:
        for dec in node.decorator_list:
            for kind, call in self.marks(dec):
                self.gaps.append(self.gap(kind, call, name))
            self.params(dec, name)

    def read(self) -> None:
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                     for t in node.targets):
                for kind, call in self.marks(node.value):
                    self.gaps.append(self.gap(kind, call, "*"))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                self.tests += 1
                self.decorated(node, node.name)
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                self.decorated(node, node.name)
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                            for t in item.targets):
                        for kind, call in self.marks(item.value):
                            self.gaps.append(self.gap(kind, call, node.name))
                    elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                        self.tests += 1
                        self.decorated(item, f"{node.name}::{item.name}")

    def unread(self) -> list[str]:
        """Gap marks that appear in the module but were not read as applied to a test."""
        out = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and _mark_kind(node.func, self.aliases) and id(node) not in self.used:
                out.append(f"{self.where(node)}: a {_mark_kind(node.func, self.aliases)} marker that the "
                           "capability page cannot place (use it as a decorator, in pytestmark, or in "
                           "pytest.param(marks=...))")
        return out


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def table_gaps(root: Path = ROOT) -> list[Gap]:
    """The entries of the suite's gap tables (``gaps.py``), which the tests decide with."""
    path = root / GAPS_MODULE
    if not path.is_file():
        return []
    module = _load(path, "vecbridge_docs_suite_gaps")
    return [Gap("gaps", g.feature, g.kind, tuple(g.backends), " ".join(g.reason.split()), used_by=tuple(g.tests))
            for g in module.all_gaps()]


def declared() -> ModuleType:
    """The sibling hook that reads the backends' declarations (their classes are imported)."""
    return _load(Path(__file__).with_name("declared.py"), "vecbridge_docs_declared")


def collect(root: Path = ROOT) -> Suite:
    """Read the suite's markers and gap tables and the configured backends under ``root``."""
    gaps: list[Gap] = []
    warnings: list[str] = []
    tests = 0
    for path in sorted((root / TESTING_DIR).glob("test_*.py")):
        reader = _Reader(path)
        reader.read()
        gaps += reader.gaps
        tests += reader.tests
        warnings += reader.unread()
    gaps += table_gaps(root)
    forms, modules = backend_forms(root / CONFTEST)
    known = set(forms) | {f for names in forms.values() for f in names}
    for g in gaps:
        for b in g.backends:
            if b not in known:
                warnings.append(f"{g.module}.py:{g.line or g.test}: {g.kind} names {b!r}, which is no backend of "
                                f"{CONFTEST} (known: {', '.join(sorted(known))})")
    return Suite(gaps, tests, forms, modules, warnings, root)


def backend_forms(conftest: Path = ROOT / CONFTEST) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``BACKENDS`` of the conformance conftest, read with ast: family -> forms, family -> module."""
    tree = ast.parse(conftest.read_text(encoding="utf-8"), filename=str(conftest))
    entries: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id == "BACKENDS" and isinstance(node.value, ast.Dict):
                    entries += [(k.value, v) for k, v in zip(node.value.keys, node.value.values)
                                if isinstance(k, ast.Constant) and isinstance(k.value, str)]
                elif (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == "BACKENDS"
                      and isinstance(t.slice, ast.Constant) and isinstance(t.slice.value, str)
                      and node.value is not None):
                    entries.append((t.slice.value, node.value))
    if not entries:
        raise MarkerError(f"{conftest}: no BACKENDS table found")
    forms: dict[str, list[str]] = {}
    modules: dict[str, str] = {}
    for name, value in entries:
        family = name.split("-", 1)[0]
        if name not in forms.setdefault(family, []):
            forms[family].append(name)
        if isinstance(value, ast.Tuple) and value.elts and isinstance(value.elts[0], ast.Constant):
            modules.setdefault(family, str(value.elts[0].value))
    return forms, modules


# -- rendering ----------------------------------------------------------------------------

def _cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _describe(g: Gap, family: str) -> str:
    names = g.applies_to(family)
    forms = [n for n in names if n != family]
    scope = f" ({', '.join(forms)})" if forms and family not in names else ""
    raises = f", raises `{g.raises}`" if g.raises else ""
    used = f" (decides {', '.join(f'`{t}`' for t in g.used_by)})" if g.used_by else ""
    return f"**{g.kind}**{scope}{raises}: {g.reason or 'no reason given'}{used}"


def render_matrix(suite: Suite) -> str:
    """The capability page: a summary per backend, then one row per marked test."""
    fams = suite.families
    out = ["| backend | forms tested | notimpl | never |", "|---|---|---|---|"]
    for f in fams:
        n_ni = len({g.label for g in suite.gaps if g.kind == "notimpl" and g.applies_to(f)})
        n_nv = len({g.label for g in suite.gaps if g.kind == "never" and g.applies_to(f)})
        out.append(f"| {f} | {', '.join(f'`{x}`' for x in suite.forms[f])} | {n_ni} | {n_nv} |")
    out.append("")
    marked = len({g.label for g in suite.gaps if g.module != "gaps"})
    tabled = len({g.label for g in suite.gaps if g.module == "gaps"})
    out.append(f"The suite has {suite.tests} test functions, most of them parametrised; {marked} tests "
               f"or parameter sets carry a gap marker, and its gap table (`vecbridge.testing.gaps`) has "
               f"{tabled} entries that tests decide with.")
    out.append("")
    if not suite.gaps:
        out.append('!!! success "No gaps"')
        out.append("    No test of the conformance suite is marked `notimpl` or `never` and its gap table "
                   "is empty: every test passes on every backend listed above.")
        return "\n".join(out) + "\n"
    rows: dict[str, list[Gap]] = {}
    for g in suite.gaps:
        rows.setdefault(g.label, []).append(g)
    out.append("| test | " + " | ".join(fams) + " |")
    out.append("|---|" + "---|" * len(fams))
    for label, gaps in rows.items():
        cells = []
        for f in fams:
            hits = [_cell(_describe(g, f)) for g in gaps if g.applies_to(f)]
            cells.append("<br>".join(hits) if hits else "ok")
        out.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def render_gaps(suite: Suite, family: str) -> str:
    """The gaps of one backend family, as a Markdown list."""
    if family not in suite.forms:
        return (f'!!! note "Not in the conformance run"\n    `{family}` is not in the BACKENDS table of '
                f"`{CONFTEST}`, so the suite does not run on it yet.\n")
    module = suite.modules.get(family, family)
    missing = not (suite.root / BACKENDS_DIR / module).is_dir()
    forms = ", ".join(f"`{x}`" for x in suite.forms[family])
    gaps = [g for g in suite.gaps if g.applies_to(family)]
    if missing and not gaps:
        return (f'!!! warning "Not written yet"\n    The `{family}` backend is not in this build yet '
                f"(`src/vecbridge/backends/{module}/` does not exist); the suite will run it as {forms}.\n")
    if not gaps:
        return (f"The conformance suite marks no gap for `{family}`: every test passes on {forms}.\n")
    lines = [(f"Forms tested: {forms}. Each line is a test marked as a strict expected failure here, or an "
              "entry of the suite's gap table (`vecbridge.testing.gaps`) that tests decide with:"), ""]
    for g in gaps:
        lines.append(f"- `{g.label}` — {_describe(g, family)}")
    return "\n".join(lines) + "\n"


def _docstring_text(doc: str) -> str:
    """A docstring as plain text: reST roles and double backticks dropped, layout kept."""
    doc = re.sub(r":(?:class|func|mod|meth|attr|data|exc|obj):`~?\.?([^`]+)`", r"\1", doc)
    doc = re.sub(r"``([^`]+)``( {2,})", lambda m: m.group(1) + m.group(2) + "    ", doc)  # keep table columns
    doc = re.sub(r"``([^`]+)``", r"\1", doc)
    return re.sub(r"::\s*$", ":", doc, flags=re.MULTILINE)


def render_backend(suite: Suite, family: str) -> str:
    """Index types and the client module docstring of a backend, read from its folder."""
    module = suite.modules.get(family, family)
    folder = suite.root / BACKENDS_DIR / module
    if not folder.is_dir():
        return (f'!!! warning "Not written yet"\n    `src/vecbridge/backends/{module}/` does not exist in this '
                "build; this page describes the contract the backend will honour.\n")
    dec = declared()
    index_types = dec.client_class(family, suite.root).capabilities_declared.index_types
    doc = None
    for path in [folder / "client.py", folder / "__init__.py"]:
        if path.is_file():
            doc = doc or ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    out = ["Index types (`index={\"type\": …}`) it declares: " + ", ".join(f"`{t}`" for t in index_types)
           + "; any other type raises `UnsupportedFeatureError`.", "",
           "Its options (declared by its client class; see also [URLs](../urls.md)):", "",
           dec.render_options(family, suite.root)]
    if doc:
        out.append(f"From the source (the docstring of `vecbridge.backends.{module}.client`):")
        out.append("")
        out.append("```text")
        out += _docstring_text(doc).splitlines()
        out.append("```")
    return "\n".join(out) + "\n"


def render_forms(suite: Suite) -> str:
    """The families and forms of ``BACKENDS``, as a table."""
    out = ["| family | forms |", "|---|---|"]
    out += [f"| `{f}` | {', '.join(f'`{x}`' for x in suite.forms[f])} |" for f in suite.families]
    return "\n".join(out) + "\n"


def render_cli(suite: Suite, command: str) -> str:
    """``vecbridge COMMAND --help``, run from the source tree, as a text block."""
    env = dict(os.environ, COLUMNS="92", PYTHONPATH=os.pathsep.join(
        [str(suite.root / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    argv = [sys.executable, "-m", "vecbridge", *([command] if command != "main" else []), "--help"]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd=suite.root, timeout=60)
    if proc.returncode != 0:
        raise MarkerError(f"{' '.join(argv[1:])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return "```text\n" + proc.stdout.rstrip() + "\n```\n"


def render(markdown: str, suite: Suite) -> str:
    """Replace every placeholder of a page."""
    def sub(m: re.Match[str]) -> str:
        what, arg = m.group(1), m.group(2)
        if what == "capabilities":
            return render_matrix(suite)
        if what == "native-scores":
            return declared().render_native_scores([f for f in suite.families if (
                suite.root / BACKENDS_DIR / suite.modules.get(f, f)).is_dir()], suite.root)
        if what == "forms":
            return render_forms(suite)
        if not arg:
            raise MarkerError(f"<!-- vecbridge:{what} --> needs an argument")
        if what == "cli":
            return render_cli(suite, arg)
        return render_gaps(suite, arg) if what == "gaps" else render_backend(suite, arg)
    return _PLACEHOLDER.sub(sub, markdown)


# -- MkDocs events ------------------------------------------------------------------------

_suite: Suite | None = None


def on_pre_build(config: Any) -> None:
    global _suite
    _suite = collect(Path(config["config_file_path"]).resolve().parent)
    for w in _suite.warnings:
        log.warning(w)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "vecbridge:" not in markdown:
        return markdown
    suite = _suite if _suite is not None else collect(Path(config["config_file_path"]).resolve().parent)
    out = render(markdown, suite)
    for left in re.findall(r"<!--\s*vecbridge:[^>]*-->", out):
        log.warning(f"{page.file.src_uri}: unknown placeholder {left}")
    return out


def families(root: Path = ROOT) -> Iterable[str]:
    """The backend families of the conformance run (for tests)."""
    return sorted(backend_forms(root / CONFTEST)[0])
