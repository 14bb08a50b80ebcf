"""Run the conformance suite (vecbridge.testing) over every configured backend.

``BACKENDS`` names each form of each backend and how to reach it: an embedded form
gets a fresh folder; a server form starts a real engine (tests/engines.py) unless
``VECBRIDGE_TEST_<FAMILY>_URL`` points at one already running (docker-compose).
``VECBRIDGE_TEST_BACKENDS=faiss,chroma-server`` selects some of them (families or names).

The read tests also run on a native collection (one written by the database's own client,
``vecbridge.testing.native``) on one form per family, the first of ``NATIVE_FORMS`` that is
selected: the form whose database the native factory writes into (a folder of its own for
the embedded engines; the PostgreSQL under test, embedded or server).

The shared suite runs in the modes of ``VECBRIDGE_TEST_MODES`` (default ``sync,async``):
in ``async`` every call of a test goes through :mod:`vecbridge.aio`
(:mod:`vecbridge.testing.asyncmode`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import engines
import pytest

from vecbridge.testing import BackendUnderTest, asyncmode
from vecbridge.testing.plugin import declare_backends, declare_native_forms


@contextlib.contextmanager
def _folder(template: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="vbtest-") as tmp:
        yield template.format(dir=tmp)  # `scheme:////abs` is an absolute path


@contextlib.contextmanager
def _fixed(url: str) -> Iterator[str]:
    yield url


@contextlib.contextmanager
def _engine(start: Callable[[], Any], family: str) -> Iterator[str]:
    given = os.environ.get(f"VECBRIDGE_TEST_{family.upper()}_URL")
    if given:
        yield given
        return
    with start() as engine:
        yield engine.url


@contextlib.contextmanager
def _pgvector_embedded() -> Iterator[str]:
    """A folder for pgvector:///path; the embedded server is stopped before the folder goes."""
    with _folder("pgvector:///{dir}/pg") as url:
        try:
            yield url
        finally:
            from vecbridge.backends.pgvector import stop_embedded

            stop_embedded(url[len("pgvector:///"):])


# name: (backend module, persistent, URL context factory)
BACKENDS: dict[str, tuple[str, bool, Callable[[], Any]]] = {
    "faiss-memory": ("faiss", False, lambda: _fixed("faiss://")),
    "faiss-disk": ("faiss", True, lambda: _folder("faiss:///{dir}/faiss")),
    "chroma-server": ("chroma", True, lambda: _engine(engines.chroma_server, "chroma")),
    "chroma-embedded": ("chroma", True, lambda: _folder("chroma:///{dir}/chroma")),
    "chroma-memory": ("chroma", False, lambda: _fixed("chroma://")),
    "pgvector-server": ("pgvector", True, lambda: _engine(engines.postgres_server, "pgvector")),
    "pgvector-embedded": ("pgvector", True, _pgvector_embedded),
    "milvus-server": ("milvus", True, lambda: _engine(engines.milvus_server, "milvus")),
    "milvus-lite": ("milvus", True, lambda: _folder("milvus:///{dir}/milvus.db")),
    "qdrant-memory": ("qdrant", False, lambda: _fixed("qdrant://")),
    "qdrant-disk": ("qdrant", True, lambda: _folder("qdrant:///{dir}/qdrant")),
}
if os.environ.get("VECBRIDGE_TEST_QDRANT_URL"):
    BACKENDS["qdrant-server"] = ("qdrant", True, lambda: _fixed(os.environ["VECBRIDGE_TEST_QDRANT_URL"]))


# family: the forms its native read tests may run on, in order of preference (only the first
# selected one runs them: they read one collection per metric, the other forms add nothing)
NATIVE_FORMS: dict[str, tuple[str, ...]] = {
    "chroma": ("chroma-embedded",),
    "qdrant": ("qdrant-disk",),
    "milvus": ("milvus-lite",),
    "pgvector": ("pgvector-embedded", "pgvector-server"),  # the 103 native tests: 10.6 s embedded, 18.3 s server
    "faiss": ("faiss-disk",),
}


def _selected() -> list[str]:
    wanted = [w.strip() for w in os.environ.get("VECBRIDGE_TEST_BACKENDS", "").split(",") if w.strip()]
    names = []
    for name, (module, _, _) in BACKENDS.items():
        if wanted and name not in wanted and name.split("-")[0] not in wanted:
            continue
        if importlib.util.find_spec(f"vecbridge.backends.{module}") is None:
            continue  # that backend is not written yet
        names.append(name)
    return names


def pytest_configure(config: pytest.Config) -> None:
    # every form, selected or not: a gap marker naming another form is no typo
    declare_backends(config, [*BACKENDS, "qdrant-server"])
    selected = _selected()
    declare_native_forms(config, [next(f for f in forms if f in selected) for forms in NATIVE_FORMS.values()
                                  if any(f in selected for f in forms)])


_running: dict[str, tuple[contextlib.ExitStack, str]] = {}


def _modes() -> list[str]:
    wanted = [w.strip() for w in os.environ.get("VECBRIDGE_TEST_MODES", "sync,async").split(",") if w.strip()]
    bad = [w for w in wanted if w not in asyncmode.MODES]
    if bad or not wanted:
        raise pytest.UsageError(f"VECBRIDGE_TEST_MODES={os.environ.get('VECBRIDGE_TEST_MODES')!r}: "
                                f"give some of {', '.join(asyncmode.MODES)} separated by commas")
    return wanted


#: The frameworks' own suites (LangChain's, LlamaIndex's, Haystack's: 1,500 tests over every form)
#: run on one form per family by default: the bridges stand on the Collection protocol, which
#: the shared suite proves on every form in both modes.  VECBRIDGE_TEST_FRAMEWORK_FORMS=all (or a
#: comma list) runs them on more; pgvector-server keeps the pooled async connections in the run.
FRAMEWORK_MODULES = ("test_langchain", "test_haystack", "test_llamaindex")
FRAMEWORK_FORMS = ("faiss-memory", "chroma-embedded", "qdrant-memory", "milvus-lite", "pgvector-server")


def _framework_forms() -> set[str] | None:
    given = os.environ.get("VECBRIDGE_TEST_FRAMEWORK_FORMS", "").strip()
    if given == "all":
        return None
    names = {w.strip() for w in given.split(",") if w.strip()} or set(FRAMEWORK_FORMS)
    unknown = names - set(BACKENDS) - {"qdrant-server"}
    if unknown:
        raise pytest.UsageError(f"VECBRIDGE_TEST_FRAMEWORK_FORMS names {', '.join(sorted(unknown))}: the forms are "
                                f"{', '.join(BACKENDS)} (or all)")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vb_backend" in metafunc.fixturenames:
        names = _selected()
        if metafunc.module.__name__.rsplit(".", 1)[-1] in FRAMEWORK_MODULES:
            forms = _framework_forms()
            names = [n for n in names if forms is None or n in forms]
        params = [BackendUnderTest(n, "", BACKENDS[n][1]) for n in names]
        metafunc.parametrize("vb_backend", params, ids=[p.name for p in params], indirect=True, scope="session")
    # The shared suite (vecbridge.testing) runs in each mode: its client fixtures connect
    # through vecbridge or vecbridge.aio (ids like [pgvector-server-async]).  Other modules
    # (the async tests, the framework bridges) use their clients as they are: sync.
    if "vb_mode" in metafunc.fixturenames and metafunc.function.__module__.startswith("vecbridge.testing."):
        modes = asyncmode.modes_for(metafunc.function.__name__, _modes())
        metafunc.parametrize("vb_mode", modes, indirect=True, scope="session")


@pytest.fixture(scope="session")
def vb_backend(request: pytest.FixtureRequest) -> Iterator[BackendUnderTest]:
    """Start (once per session) the engine of the backend under test and yield it with its URL."""
    param: BackendUnderTest = request.param
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(BACKENDS[param.name][2]())
        yield BackendUnderTest(param.name, url, param.persistent)
