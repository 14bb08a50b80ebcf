"""MkDocs hook: the docs' tables read from what each backend's client class declares.

Each built-in backend's client class (``vecbridge.registry.BUILTIN_BACKENDS``) declares
``capabilities_declared`` (a :class:`vecbridge.capabilities.Capabilities`) and
``declared_options`` (a tuple of :class:`vecbridge.options.Option`); the classes are
imported (their client libraries must be installed), so the page shows exactly what
the code holds.  A page asks for the tables with HTML comments::

    <!-- vecbridge:declared-capabilities -->   every backend's declared Capabilities
    <!-- vecbridge:options -->                 every backend's URL options, a section each
    <!-- vecbridge:options FAMILY -->          one backend's URL options

The declared capabilities are what the core and the migration planner act on; what
the conformance suite expects is its own (``vecbridge.testing.gaps`` and the markers),
and a cell where the two differ says so.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import re
import sys
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"<!--\s*vecbridge:(declared-capabilities|options)(?:\s+([A-Za-z0-9_-]+))?\s*-->")

#: What each field of Capabilities means, in a few words (the dataclass comments, shorter).
_FIELD_TEXT = {
    "metrics": "metrics", "index_types": "index types besides the default", "max_dimension": "largest dimension",
    "name_rule": "collection names", "max_batch_rows": "rows per write", "max_request_bytes": "bytes per request",
    "wire_bytes_per_float": "bytes per vector component sent", "max_id_bytes": "largest id (UTF-8 bytes)",
    "max_document_bytes": "largest document (bytes)", "max_metadata_bytes": "largest metadata (JSON bytes)",
    "filter_int_range": "filter integers compared exactly", "ordered_scan": "scan in key order",
    "native_async": "native async client", "atomic_add": "add's duplicate check holds across processes",
    "shared_between_processes": "several processes at once", "persistent": "records outlive the client",
}


#: What ``None`` means in a field (elsewhere: no limit of the backend's own).
_NONE = {"max_dimension": "the contract's 65,536", "filter_int_range": "any integer",
         "max_request_bytes": "the planner's default"}


def _source(root: Path) -> None:
    """Import vecbridge from ``root``'s sources (the tree being documented) when it is not loaded yet."""
    src = str(root / "src")
    if "vecbridge" not in sys.modules and src not in sys.path:
        sys.path.insert(0, src)


def families(root: Path = ROOT) -> dict[str, str]:
    """Built-in backend family -> ``module:Class`` of its client (aliases such as postgresql dropped)."""
    _source(root)
    from vecbridge.registry import BUILTIN_BACKENDS

    out: dict[str, str] = {}
    for scheme, spec in sorted(BUILTIN_BACKENDS.items()):
        module = spec.target.split(":")[0].rsplit(".", 1)[-1]
        if scheme == module:
            out[scheme] = spec.target
    return out


def client_class(family: str, root: Path = ROOT) -> Any:
    target = families(root)[family]
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type)
    return cls


def _suite_gaps(root: Path) -> ModuleType | None:
    """The conformance suite's gap tables (``src/vecbridge/testing/gaps.py`` under ``root``)."""
    path = root / "src" / "vecbridge" / "testing" / "gaps.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("vecbridge_docs_suite_gaps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, re.Pattern):
        value = value.pattern
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            lo, hi = value
            return f"{lo:,} … {hi:,}"
        return ", ".join(f"`{v}`" for v in value) or "none"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value), quote=False).replace("|", "\\|")


def _index_note(family: str, declared: tuple[str, ...], gaps: ModuleType | None) -> str:
    """Where the suite expects other index types than the backend declares."""
    if gaps is None:
        return ""
    expected = {t for t in gaps.INDEX_GAPS if gaps.has_index(family, t)}
    missing = sorted(expected - set(declared))
    return f"<br>**the suite expects also** {', '.join(f'`{t}`' for t in missing)}" if missing else ""


def render_capabilities(root: Path = ROOT) -> str:
    """One row per field of Capabilities, one column per backend: the declared values."""
    _source(root)
    from vecbridge.capabilities import Capabilities

    fams = list(families(root))
    caps = {f: client_class(f, root).capabilities_declared for f in fams}
    gaps = _suite_gaps(root)
    out = ["| | " + " | ".join(fams) + " |", "|---|" + "---|" * len(fams)]
    for fld in fields(Capabilities):
        if fld.name == "name_pattern":
            continue  # name_rule says it in words
        cells = []
        for f in fams:
            value = getattr(caps[f], fld.name)
            cell = _NONE.get(fld.name, "no limit of its own") if value is None else _cell(value)
            if fld.name == "index_types":
                cell += _index_note(f, value, gaps)
            cells.append(cell)
        out.append(f"| {_FIELD_TEXT.get(fld.name, fld.name)} (`{fld.name}`) | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def render_options(family: str, root: Path = ROOT, heading: str = "") -> str:
    """A backend's declared options as a table (name, type, default, URL forms, meaning)."""
    cls = client_class(family, root)
    options = getattr(cls, "declared_options", ())
    out = [heading, ""] if heading else []
    if not options:
        out.append(f"The {family} backend takes no options besides `collection`.")
        return "\n".join(out) + "\n"
    out += ["| option | type | default | URL forms | what it does |", "|---|---|---|---|---|"]
    for o in options:
        kind = o.kind + (" (one of " + ", ".join(f"`{c}`" for c in o.choices) + ")" if o.choices else "")
        if o.minimum is not None:
            kind += f", at least {o.minimum:g}"
        default = "—" if o.default is None else f"`{o.default!r}`" if isinstance(o.default, str) else f"`{o.default}`"
        forms = {"any": "all", "server": "server (with a host)", "local": "embedded / in memory"}[o.where]
        doc = html.escape(o.doc, quote=False).replace("|", "\\|")
        if o.secret:
            doc += " *(secret: printed as `***`)*"
        out.append(f"| `{o.name}` | {kind} | {default} | {forms} | {doc} |")
    if getattr(cls, "passthrough_option", None) is not None:
        out += ["", "Any other option goes to the database driver unchanged (its own connection parameters)."]
    return "\n".join(out) + "\n"


def render_all_options(root: Path = ROOT) -> str:
    return "\n".join(render_options(f, root, heading=f"### {f}") for f in families(root))


_KIND_TEXT = {
    ("distance", "l2"): "‖q − v‖", ("distance", "ip"): "−(q · v)", ("distance", "cosine"): "1 − cos",
    ("squared_l2", "l2"): "‖q − v‖² (squared)",
    ("similarity", "ip"): "q · v", ("similarity", "cosine"): "cos",
    ("one_minus_similarity", "ip"): "1 − q · v", ("one_minus_similarity", "cosine"): "1 − cos",
    ("neg_similarity", "ip"): "−(q · v)", ("neg_similarity", "cosine"): "−cos",
}


def collection_class(family: str, root: Path = ROOT) -> Any:
    """The backend's collection class: the BaseCollection subclass of its ``collection`` module."""
    from vecbridge.base import BaseCollection

    package = client_class(family, root).__module__.rsplit(".", 1)[0]
    module = importlib.import_module(f"{package}.collection")
    found = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, BaseCollection)
             and c.__module__ == module.__name__]
    if len(found) != 1:
        raise ValueError(f"{module.__name__} defines {len(found)} collection classes, not one")
    return found[0]


def render_native_scores(fams: list[str], root: Path = ROOT) -> str:
    """Per backend and metric, the number its engine returns (``native_scores`` of its collection class)."""
    out = ["| backend | l2 | ip | cosine |", "|---|---|---|---|"]
    for family in fams:
        kinds = collection_class(family, root).native_scores
        cells = [_cell(_KIND_TEXT.get((str(kinds.get(m)), m), str(kinds.get(m, "?")))) for m in ("l2", "ip", "cosine")]
        out.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def render(markdown: str, root: Path = ROOT) -> str:
    def sub(m: re.Match[str]) -> str:
        what, arg = m.group(1), m.group(2)
        if what == "declared-capabilities":
            return render_capabilities(root)
        return render_options(arg, root) if arg else render_all_options(root)
    return _PLACEHOLDER.sub(sub, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "vecbridge:" not in markdown:
        return markdown
    return render(markdown, Path(config["config_file_path"]).resolve().parent)
