"""Pytest plugin of the conformance suite: fixtures and the ``notimpl``/``never`` gap markers.

A test marked ``@pytest.mark.notimpl(["chroma"], reason=...)`` (a gap that could be
closed) or ``@pytest.mark.never([...], reason=...)`` (one that cannot) is a strict
xfail on those backends: when the gap closes, the test fails until the mark goes.
Backends are named ``family`` (all forms) or ``family-form``.  A name that is no
configured backend (a typo such as ``qdrnt``) stops the run with a usage error, in a
marker as in the suite's gap tables (:mod:`.gaps`): a misspelt gap would otherwise
turn into a silent failure or, worse, a silent pass.  The known names are those that
the conftest declares with :func:`declare_backends` (all forms it can run, selected or
not), vecbridge's own (:data:`BUILTIN_FORMS`) and those of the backends under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

import vecbridge

from .data import BackendUnderTest, Dataset, make_dataset


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "notimpl(backends, reason): a gap that could be closed (strict xfail)")
    config.addinivalue_line("markers", "never(backends, reason): a gap that cannot be closed (strict xfail)")


_KNOWN = pytest.StashKey[set[str]]()

#: The forms of vecbridge's own backends that its conformance run knows
#: (``tests/conformance/conftest.py``): the suite's markers and gap tables name these, so
#: they are known in a third-party backend's run too.
BUILTIN_FORMS = ("chroma-embedded", "chroma-memory", "chroma-server", "faiss-disk", "faiss-memory",
                 "milvus-lite", "milvus-server", "pgvector-embedded", "pgvector-server", "qdrant-disk",
                 "qdrant-memory", "qdrant-server")


def declare_backends(config: pytest.Config, names: Iterable[str]) -> None:
    """Declare every backend form the conftest can run (``family-form``), selected or not."""
    known = config.stash.setdefault(_KNOWN, set())
    for name in names:
        known.update({name, name.split("-", 1)[0]})


def known_backends(config: pytest.Config, items: Iterable[pytest.Item] = ()) -> set[str]:
    """The built-in and declared forms and their families, plus those of the backends under test."""
    declared: set[str] = config.stash.get(_KNOWN, set())
    known = set(declared)
    known.update({n for name in BUILTIN_FORMS for n in (name, name.split("-", 1)[0])})
    for item in items:
        backend = _backend_of(item)
        if backend is not None:
            known.update({backend.name, backend.family})
    return known


def _mark_backends(mark: pytest.Mark) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("backends", [])
    return [names] if isinstance(names, str) else list(names)


def check_names(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Raise :class:`pytest.UsageError` for a marker or gap-table entry naming an unknown backend."""
    known = known_backends(config, items)
    bad: dict[str, set[str]] = {}
    for item in items:
        for kind in ("notimpl", "never"):
            for mark in item.iter_markers(kind):
                if not mark.kwargs.get("reason"):
                    raise pytest.UsageError(f"{item.nodeid}: a {kind} marker needs reason=...")
                for name in _mark_backends(mark):
                    if name not in known:
                        bad.setdefault(name, set()).add(f"{kind} on {item.nodeid}")
    from .gaps import all_gaps

    for gap in all_gaps():
        for name in gap.backends:
            if name not in known:
                bad.setdefault(name, set()).add(f"the gap table entry {gap.feature!r}")
    if bad:
        lines = [f"{name!r} (in {', '.join(sorted(where)[:3])})" for name, where in sorted(bad.items())]
        raise pytest.UsageError("vecbridge.testing: unknown backend name " + "; ".join(lines)
                                + f". Known backends: {', '.join(sorted(known))}")


def _backend_of(item: pytest.Item) -> BackendUnderTest | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("vb_backend")
    return value if isinstance(value, BackendUnderTest) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    check_names(config, items)
    for item in items:
        backend = _backend_of(item)
        if backend is None:
            continue
        for name in ("notimpl", "never"):
            for mark in item.iter_markers(name):
                names = _mark_backends(mark)
                if backend.family in names or backend.name in names:
                    reason = mark.kwargs.get("reason", name)
                    raises = mark.kwargs.get("raises")
                    kw: dict[str, Any] = {"strict": True, "reason": f"{name}: {reason}"}
                    if raises is not None:
                        kw["raises"] = raises
                    item.add_marker(pytest.mark.xfail(**kw))


@pytest.fixture(scope="session")
def vb_backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    """The backend under test; a conftest parametrises it (indirectly) with BackendUnderTest values."""
    param = getattr(request, "param", None)
    if not isinstance(param, BackendUnderTest):
        pytest.skip("no backend configured for the conformance suite")
    return param


@pytest.fixture(scope="session")
def vb_mode(request: pytest.FixtureRequest) -> str:
    """``sync`` or ``async`` (every call through :mod:`vecbridge.aio`, :mod:`.asyncmode`); a
    conftest parametrises it (indirectly), else the suite runs in sync mode."""
    return getattr(request, "param", "sync")


def api(mode: str) -> Any:
    """What the suite connects with in ``mode``: :mod:`vecbridge`, or its async twin seen
    through sync calls; both have ``connect(url)`` and ``open_collection(url)``."""
    if mode == "async":
        from . import asyncmode

        return asyncmode
    if mode != "sync":
        raise ValueError(f"vb_mode is 'sync' or 'async', not {mode!r}")
    return vecbridge


@pytest.fixture
def vb_api(vb_mode: str) -> Any:
    """``vb_api.connect(url)`` / ``vb_api.open_collection(url)`` in the test's mode."""
    return api(vb_mode)


@pytest.fixture
def vb_client(vb_backend: BackendUnderTest, vb_mode: str) -> Iterator[vecbridge.Client]:
    client = api(vb_mode).connect(vb_backend.url)
    try:
        yield client
    finally:
        client.close()


def unique_name(prefix: str = "vbt") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_collection(vb_client: vecbridge.Client) -> Iterator[Callable[..., Any]]:
    """Create collections with unique names; they are deleted after the test."""
    made: list[str] = []

    def make(dimension: int = 16, metric: str = "cosine", index: Any = None, name: str | None = None) -> Any:
        name = name or unique_name()
        coll = vb_client.create_collection(name, dimension, metric, index)
        made.append(name)
        return coll

    yield make
    for name in made:
        try:
            vb_client.delete_collection(name)
        except vecbridge.VecbridgeError:
            pass


@pytest.fixture(scope="module")
def shared_collection(vb_backend: BackendUnderTest, vb_mode: str) -> Iterator[Callable[[str], tuple[Any, Dataset]]]:
    """Read-only collections of the standard dataset, one per metric, made once per backend.

    For tests that only read: creating a collection costs seconds on some servers.
    """
    from ._helpers import exact_index

    client = api(vb_mode).connect(vb_backend.url)
    made: dict[str, tuple[Any, Dataset]] = {}

    def get(metric: str) -> tuple[Any, Dataset]:
        if metric not in made:
            ds = make_dataset()
            coll = client.create_collection(unique_name("vbs"), 16, metric, exact_index(vb_backend))
            coll.add(ds.ids, ds.vectors, ds.metadatas, ds.documents)
            made[metric] = (coll, ds)
        return made[metric]

    yield get
    for coll, _ in made.values():
        try:
            client.delete_collection(coll.name)
        except vecbridge.VecbridgeError:
            pass
    client.close()
