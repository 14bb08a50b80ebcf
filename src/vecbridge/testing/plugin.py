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

The read tests (those that use :func:`shared_collection`) run once per layout
(``vb_layout``): on collections vecbridge made (``vecbridge``) and on collections of the same
data that the database's own client wrote (``native``, :mod:`.native`), on the forms the
conftest names with :func:`declare_native_forms` (one per family keeps the run short).  A
test marked ``@pytest.mark.needs("ids", "vectors")`` is meaningful on a collection holding
only those parts (a FAISS index file); the others are not generated where the native
collection does not hold what they read.  The native collections' differences are entries
of :data:`.gaps.NATIVE_GAPS`, strict xfails where the test cannot pass.
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
    config.addinivalue_line("markers", "needs(*parts): the parts of records (ids, vectors, metadata, documents) "
                                       "a read test needs a collection to hold (default: all)")


_KNOWN = pytest.StashKey[set[str]]()
_NATIVE = pytest.StashKey[set[str]]()
LAYOUTS = ("vecbridge", "native")
PARTS = frozenset({"ids", "vectors", "metadata", "documents"})

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


def declare_native_forms(config: pytest.Config, names: Iterable[str]) -> None:
    """Name the backend forms whose read tests also run on a native collection (``vb_layout``)."""
    config.stash.setdefault(_NATIVE, set()).update(names)


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


@pytest.hookimpl(trylast=True)  # after the conftest's vb_backend: the ids read [form-layout-...]
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "shared_collection" in metafunc.fixturenames and metafunc.config.stash.get(_NATIVE, set()):
        metafunc.parametrize("vb_layout", LAYOUTS, indirect=True, scope="module")


def _layout_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("vb_layout", "vecbridge")) if callspec is not None else "vecbridge"


def suite_test_name(item: pytest.Item) -> str:
    """``test_query.py::test_topk_matches_brute_force``: how the gap tables name a suite test."""
    function = getattr(item, "function", None)
    module = getattr(function, "__module__", "") or ""
    name = getattr(item, "originalname", item.name)
    return f"{module.rsplit('.', 1)[-1]}.py::{name}"


def _mode_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("vb_mode", "sync")) if callspec is not None else "sync"


def _native_item(config: pytest.Config, item: pytest.Item, backend: BackendUnderTest) -> bool:
    """Apply the native gaps to a native item; False: the item is not for this backend."""
    from .gaps import native_gaps
    from .native import NATIVE

    family = NATIVE.get(backend.family)
    if backend.name not in config.stash.get(_NATIVE, set()) or family is None:
        return False
    mark = item.get_closest_marker("needs")
    if not (frozenset(mark.args) if mark is not None else PARTS) <= family.holds:
        return False
    test = suite_test_name(item)
    params = item.callspec.params  # type: ignore[attr-defined]  # a native item is parametrised
    for gap in native_gaps(backend.name):
        if gap.written is not None or test not in gap.tests:
            continue  # a difference of the data: the test expects what is held
        if gap.covers is not None:  # a filter gap
            if not gap.differs or hasattr(getattr(item, "obj", None), "hypothesis"):
                continue  # a refusal the test allows; a property test draws around the filters it covers
            if "where" in params and not gap.covers(params["where"]):
                continue
        elif gap.params is not None and not gap.params(params):
            continue
        item.add_marker(pytest.mark.xfail(strict=True, reason=f"{gap.kind}: {gap.feature}: {gap.reason}"))
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    check_names(config, items)
    kept, dropped = [], []
    for item in items:
        backend = _backend_of(item)
        native = backend is not None and _layout_of(item) == "native"
        if native and (_mode_of(item) != "sync" or not _native_item(config, item, backend)):  # type: ignore[arg-type]
            dropped.append(item)  # the native collections are read through the sync API (vecbridge's own
            # collections run the async mode): the same reads in both modes would only double the time
        else:
            kept.append(item)
    if dropped:  # a native collection of a form not chosen for it, or one lacking what the test reads
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
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
def vb_layout(request: pytest.FixtureRequest) -> str:
    """The layout of the read tests' collections: ``vecbridge`` (made by vecbridge) or
    ``native`` (written by the database's own client, :mod:`.native`)."""
    return str(getattr(request, "param", "vecbridge"))


@pytest.fixture(scope="module")
def shared_collection(vb_backend: BackendUnderTest, vb_layout: str,
                      vb_mode: str) -> Iterator[Callable[[str], tuple[Any, Dataset]]]:
    """Read-only collections of the standard dataset, one per metric, made once per backend,
    layout and mode; the dataset given back is the one the collection holds (:mod:`.native`).

    For tests that only read: creating a collection costs seconds on some servers.
    """
    if vb_layout == "native":
        yield from _native_shared(vb_backend)
        return
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


def _native_shared(backend: BackendUnderTest) -> Iterator[Callable[[str], tuple[Any, Dataset]]]:
    import contextlib

    from .native import native_collection

    with contextlib.ExitStack() as stack:
        made: dict[str, tuple[Any, Dataset]] = {}

        def get(metric: str) -> tuple[Any, Dataset]:
            if metric not in made:
                native = stack.enter_context(native_collection(backend, metric, make_dataset()))
                made[metric] = (native.collection, native.expected)
            return made[metric]

        yield get
