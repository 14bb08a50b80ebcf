"""Backend options: declared once per backend, converted from the URL's strings here.

A URL's query values reach a backend as the strings written (``?collection=yes`` is
``"yes"``, ``?api_key=007`` is ``"007"``).  Each backend declares its options as a
tuple of :class:`Option` (name, type, default, one-line doc); :func:`parse_options`
turns strings into those types, accepts keyword arguments of the right type, fills
defaults, and refuses an option the backend does not know, listing those it knows.
The docs' URL page is generated from the same declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidURLError

__all__ = ["Option", "parse_options"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
KINDS = ("str", "int", "float", "bool", "dict")


@dataclass(frozen=True)
class Option:
    """One option a backend takes.

    ``kind`` is ``str``, ``int``, ``float``, ``bool`` or ``dict`` (keyword argument
    only); ``where`` is ``server``, ``local`` or ``any`` (the backend's URL forms it
    applies to); a ``secret`` option is never printed; ``choices`` limits a ``str``.
    """

    name: str
    kind: str = "str"
    default: Any = None
    doc: str = ""
    where: str = "any"
    secret: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    def convert(self, value: Any, backend: str) -> Any:
        """``value`` (a URL string or a keyword argument) as this option's type."""
        where = f"the {backend} option {self.name!r}"
        shown = "***" if self.secret else repr(value)
        if value is None:
            return None
        kind = self.kind
        if kind == "dict":
            if not isinstance(value, Mapping):
                raise InvalidURLError(f"{where} is a dict (give it as a keyword argument), got {type(value).__name__}")
            return dict(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise InvalidURLError(f"{where} is true or false (also 1/0, yes/no, on/off), got {shown}")
        if kind == "str":
            if isinstance(value, (bytes, Mapping, list, tuple)):
                raise InvalidURLError(f"{where} is a string, got {type(value).__name__}")
            text = str(value)
            if self.choices is not None:
                low = text.lower()
                if low not in self.choices:
                    raise InvalidURLError(f"{where} is one of {', '.join(self.choices)}, got {shown}")
                return low
            return text
        number: Any
        try:
            if isinstance(value, bool):
                raise ValueError
            if kind == "int":
                number = value if isinstance(value, int) else int(str(value).strip())
            else:
                number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
        except ValueError:
            raise InvalidURLError(f"{where} is {'a whole number' if kind == 'int' else 'a number'}, "
                                  f"got {shown}") from None
        if self.minimum is not None and number < self.minimum:
            raise InvalidURLError(f"{where} is at least {self.minimum:g}, got {shown}")
        return number


def parse_options(declared: Iterable[Option], given: Mapping[str, Any], *, backend: str, local: bool,
                  passthrough: Callable[[str], bool] | None = None, url: str = "") -> dict[str, Any]:
    """Every declared option (converted, or its default) plus the passthrough ones given.

    ``local`` says whether the URL names an embedded/in-memory form (no host);
    ``passthrough`` accepts further names unchanged (pgvector: libpq's parameters); ``url``
    (redacted) starts each message.
    """
    at = f"{url}: " if url else ""
    table = {o.name: o for o in declared}
    out: dict[str, Any] = {}
    form = "local" if local else "server"
    for name, value in given.items():
        opt = table.get(name)
        if opt is None:
            if passthrough is not None and passthrough(name):
                out[name] = value
                continue
            known = ", ".join(sorted(o.name for o in table.values() if o.where in ("any", form))) or "none"
            more = " and the driver's own connection parameters" if passthrough is not None else ""
            raise InvalidURLError(f"{at}unknown {backend} option {name!r}; the options of a {backend} {form} URL "
                                  f"are: {known}{more}")
        if opt.where not in ("any", form):
            raise InvalidURLError(f"{at}the {backend} option {name!r} applies to a {opt.where} URL only "
                                  f"({'with a host' if opt.where == 'server' else 'with no host'})")
        try:
            out[name] = opt.convert(value, backend)
        except InvalidURLError as exc:
            raise InvalidURLError(f"{at}{exc}") from None
    for opt in table.values():
        if opt.name not in out and opt.where in ("any", form):
            out[opt.name] = opt.default
    return out
