"""Parse a backend URL into an immutable :class:`URL`.

``scheme[+driver]://[user[:password]@]host[:port][/path][?key=value&...]``

Paths follow SQLAlchemy's rule: ``faiss:///rel/path`` is relative and
``faiss:////abs/path`` absolute.  Query parameters become backend options and stay
the strings written (SQLAlchemy's rule: each backend converts its own options, see
:mod:`vecbridge.options`); keyword arguments given to :func:`vecbridge.connect` win
over them.  A password, a token or an api key prints as ``***`` in ``repr``, ``str``
and in every error message, also a password holding an unencoded ``#``, ``/`` or ``?``
(read as SQLAlchemy does: everything between the user's ``:`` and the last ``@`` of
the authority).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from .errors import InvalidURLError

__all__ = ["SECRET_OPTIONS", "URL", "redact"]

#: Option names whose values are secrets and never printed.
SECRET_OPTIONS = frozenset({"password", "api_key", "apikey", "token", "secret", "access_key", "auth", "credentials"})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9.\-]*)(?:\+([A-Za-z0-9]+))?://")


def _is_secret(key: str) -> bool:
    return key.lower() in SECRET_OPTIONS


_USERINFO = re.compile(r"^([^:/?#@]*):([^@\s]*)@(.*)$", re.DOTALL)


def _split(rest: str, text: str) -> tuple[str | None, str | None, str | None, int | None, str | None, str]:
    """(username, password, host, port, path, query text) of the part after ``scheme://``."""
    rest, _, query_text = rest.partition("?")
    rest = rest.split("#", 1)[0]
    netloc, slash, path = rest.partition("/")
    username = password = host = None
    port: int | None = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    if netloc:
        if netloc.startswith("["):
            end = netloc.find("]")
            if end < 0:
                raise InvalidURLError(f"{redact(text)!r}: unclosed '[' in the host")
            host, port_text = netloc[1:end], netloc[end + 1:].lstrip(":")
        else:
            host, _, port_text = netloc.partition(":")
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                shown = repr(port_text) if "@" not in text else "(not shown: it may be part of a password)"
                raise InvalidURLError(f"{redact(text)!r}: the port {shown} is not a number from 1 to 65535")
            port = int(port_text)
        host = unquote(host) or None
    return username, password, host, port, (unquote(path) if slash and path else None), query_text


@dataclass(frozen=True)
class URL:
    """An immutable, parsed backend URL."""

    scheme: str
    driver: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str | None = None
    query: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: str | URL) -> URL:
        """Parse ``text``; raise :class:`InvalidURLError` naming what is wrong."""
        if isinstance(text, URL):
            return text
        if not isinstance(text, str):
            raise InvalidURLError(f"a backend URL must be a string, not {type(text).__name__}")
        m = _SCHEME.match(text)
        if not m:
            raise InvalidURLError(
                f"{redact(text)!r} is not a backend URL: expected 'scheme://…' "
                "such as 'faiss://', 'chroma:///data/chroma' or 'qdrant://localhost:6333'"
            )
        scheme, driver = m.group(1).lower(), (m.group(2) or None)
        rest = text[m.end():]
        try:
            parts = _split(rest, text)
        except InvalidURLError:
            # A password with an unencoded '#', '/' or '?' cuts the authority short; read it
            # as SQLAlchemy does (the password runs to the '@'), and never echo it.
            um = _USERINFO.match(rest)
            if um is None:
                raise
            try:
                parts = _split(um.group(3), text)
            except InvalidURLError:
                raise InvalidURLError(f"{redact(text)!r} cannot be parsed; percent-encode '#', '/', '?' and '@' "
                                      "in a user name or password (e.g. '#' as %23)") from None
            parts = (unquote(um.group(1)) or None, unquote(um.group(2)), *parts[2:])
        username, password, host, port, path, query_text = parts
        query: dict[str, str] = {}
        for key, value in parse_qsl(query_text, keep_blank_values=True):
            query[key] = value
        return cls(
            scheme=scheme,
            driver=driver.lower() if driver else None,
            username=username,
            password=password,
            host=host,
            port=port,
            path=path,
            query=MappingProxyType(query),
        )

    # -- derived views -------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The scheme without its driver (``qdrant+grpc`` -> ``qdrant``)."""
        return self.scheme

    @property
    def is_local(self) -> bool:
        """True for an embedded or in-memory form: no host named."""
        return self.host is None

    def options(self, **overrides: Any) -> dict[str, Any]:
        """The query parameters as options, with ``overrides`` winning."""
        merged = dict(self.query)
        merged.update(overrides)
        return merged

    def with_query(self, **changes: Any) -> URL:
        """A copy with the given query parameters set (``None`` removes one)."""
        q = dict(self.query)
        for k, v in changes.items():
            if v is None:
                q.pop(k, None)
            else:
                q[k] = v
        return replace(self, query=MappingProxyType(q))

    def render(self, hide_secrets: bool = True) -> str:
        """The URL as text; secrets become ``***`` unless ``hide_secrets`` is false."""
        out = self.scheme + (f"+{self.driver}" if self.driver else "") + "://"
        if self.username is not None or self.password is not None:
            out += quote(self.username or "", safe="")
            if self.password is not None:
                out += ":" + ("***" if hide_secrets else quote(self.password, safe=""))
            out += "@"
        if self.host:
            out += f"[{self.host}]" if ":" in self.host else quote(self.host, safe="")
        if self.port is not None:
            out += f":{self.port}"
        if self.path is not None:
            out += "/" + quote(self.path, safe="/")
        if self.query:
            parts = []
            for k, v in self.query.items():
                shown = "***" if hide_secrets and _is_secret(k) else _encode_value(v)
                parts.append(f"{quote(str(k), safe='')}={quote(shown, safe='*')}")
            out += "?" + "&".join(parts)
        return out

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"URL({self.render()!r})"


def _encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_URL_PASSWORD = re.compile(r"(://[^/@:?#\s]*:)[^@\s]*@")
_QUERY_SECRET = re.compile(r"([?&](?:%s)=)[^&#\s]*" % "|".join(sorted(SECRET_OPTIONS)), re.IGNORECASE)


def redact(text: str) -> str:
    """Hide passwords and secret query parameters inside any text."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _QUERY_SECRET.sub(r"\1***", text)


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``options`` with secret values replaced by ``***``."""
    return {k: ("***" if _is_secret(k) and v is not None else v) for k, v in options.items()}
