"""The documentation site builds strictly, the Docker stack is well formed, and the
capability page generator reads the conformance suite's gap markers and every backend."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "docker-compose.yml"
RUN_TESTS = ROOT / "docker" / "run-tests.sh"
SERVICES = {"chroma": 8000, "milvus": 19530, "qdrant": 6333, "pgvector": 5432}  # service -> the port its URL uses


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    return _load(ROOT / "docs" / "hooks" / "capabilities.py", "vecbridge_docs_capabilities")


@pytest.fixture(scope="module")
def conformance_families() -> set[str]:
    """The families of BACKENDS, from the conformance conftest itself (imported, not parsed)."""
    module = _load(ROOT / "tests" / "conformance" / "conftest.py", "vecbridge_docs_conformance_conftest")
    return {name.split("-", 1)[0] for name in module.BACKENDS}


# -- the site -------------------------------------------------------------------------------

def test_mkdocs_build_strict(tmp_path: Path, conformance_families: set[str]) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[test]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[test]')")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    page = (site / "capabilities" / "index.html").read_text(encoding="utf-8")
    for family in conformance_families:
        assert f"<td>{family}</td>" in page, f"the capability page has no row for {family!r}"
    for html in site.rglob("*.html"):
        assert "<!-- vecbridge:" not in html.read_text(encoding="utf-8"), \
            f"{html.relative_to(site)} still holds a placeholder"
    assert not (site / "hooks").exists(), "the hook's source was published with the site"
    urls = (site / "urls" / "index.html").read_text(encoding="utf-8")
    declared = _load(ROOT / "docs" / "hooks" / "declared.py", "vecbridge_docs_declared_test")
    for family in declared.families(ROOT):
        for option in declared.client_class(family, ROOT).declared_options:
            assert f"<code>{option.name}</code>" in urls, f"the URL page lacks the {family} option {option.name!r}"
    assert "<code>max_dimension</code>" in page and "<code>filter_int_range</code>" in page, \
        "the capability page lacks the declared Capabilities"


# -- the Docker stack -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def test_compose_names_the_four_servers_with_healthchecks(compose: dict) -> None:
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    assert {"etcd", "minio"} <= set(services), "Milvus standalone needs etcd and MinIO"
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image ({image!r})"
    milvus_deps = services["milvus"].get("depends_on")
    assert isinstance(milvus_deps, dict) and all(
        milvus_deps[d].get("condition") == "service_healthy" for d in ("etcd", "minio"))


def test_compose_binds_ports_to_localhost_only(compose: dict) -> None:
    published: dict[str, set[int]] = {}
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond 127.0.0.1"
            published.setdefault(name, set()).add(int(port.split(":")[1]))
    for name, port in SERVICES.items():
        assert port in published.get(name, set()), f"{name} does not publish {port} on 127.0.0.1"


def test_compose_keeps_data_in_named_volumes(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name in [*SERVICES, "etcd", "minio"]:
        mounts = [m.split(":", 1)[0] for m in compose["services"][name].get("volumes", [])]
        named = [m for m in mounts if not m.startswith((".", "/", "$"))]
        assert named and set(named) <= declared, f"{name} keeps no data in a declared named volume"


def test_run_tests_points_every_server_form_at_compose(compose: dict, conformance_families: set[str]) -> None:
    text = RUN_TESTS.read_text(encoding="utf-8")
    assert "docker compose -f docker/docker-compose.yml" in text
    assert "up -d --wait" in text and "down -v" in text and "trap down EXIT" in text
    urls = dict(re.findall(r'export (VECBRIDGE_TEST_[A-Z]+_URL)="([^"]+)"', text))
    assert urls == {
        "VECBRIDGE_TEST_CHROMA_URL": "chroma://127.0.0.1:8000",
        "VECBRIDGE_TEST_MILVUS_URL": "milvus://127.0.0.1:19530",
        "VECBRIDGE_TEST_QDRANT_URL": "qdrant://127.0.0.1:6333",
        "VECBRIDGE_TEST_PGVECTOR_URL": "pgvector://user:pass@127.0.0.1:5432/db",
    }
    assert {k.split("_")[2].lower() for k in urls} <= conformance_families
    env = compose["services"]["pgvector"]["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == ("user", "pass", "db")
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(RUN_TESTS)], check=True)


# -- the capability page generator ----------------------------------------------------------

@pytest.fixture(scope="module")
def declared() -> ModuleType:
    return _load(ROOT / "docs" / "hooks" / "declared.py", "vecbridge_docs_declared")


def test_generator_lists_the_suite_gap_table(hook: ModuleType) -> None:
    """Every entry of vecbridge.testing.gaps (what the tests decide with) is on the page of
    each backend it names, with its reason, and in the matrix."""
    from vecbridge.testing import gaps

    suite = hook.collect()
    page = hook.render_matrix(suite)
    assert gaps.all_gaps(), "the gap table is empty: then this test checks nothing"
    for g in gaps.all_gaps():
        assert f"gaps.py: {g.feature}" in page
        for family in {b.split("-", 1)[0] for b in g.backends}:
            text = hook.render_gaps(suite, family)
            assert g.feature in text and " ".join(g.reason.split())[:60] in text, (family, g.feature)


def test_declared_tables_come_from_the_classes(declared: ModuleType) -> None:
    from dataclasses import fields

    from vecbridge.capabilities import Capabilities

    fams = list(declared.families(ROOT))
    assert set(fams) == {"chroma", "faiss", "milvus", "pgvector", "qdrant"}
    table = declared.render_capabilities(ROOT)
    for f in fields(Capabilities):
        if f.name != "name_pattern":
            assert f"(`{f.name}`)" in table, f"no row for {f.name}"
    row = next(line for line in table.splitlines() if "(`max_dimension`)" in line)
    cells = [c.strip() for c in row.strip("|").split(" | ")][1:]
    for family, cell in zip(fams, cells):
        value = declared.client_class(family, ROOT).capabilities_declared.max_dimension
        assert cell == ("the contract's 65,536" if value is None else f"{value:,}"), (family, cell)
    for family in fams:
        cls = declared.client_class(family, ROOT)
        text = declared.render_options(family, ROOT)
        for option in cls.declared_options:
            assert f"| `{option.name}` | {option.kind}" in text, (family, option.name)
            if option.secret:
                line = next(x for x in text.splitlines() if x.startswith(f"| `{option.name}` |"))
                assert "secret" in line, (family, option.name)

def test_generator_lists_every_backend_family(hook: ModuleType, conformance_families: set[str]) -> None:
    assert set(hook.families()) == conformance_families
    suite = hook.collect()
    assert suite.warnings == [], suite.warnings
    page = hook.render_matrix(suite)
    for family in conformance_families:
        assert re.search(rf"^\| {re.escape(family)} \|", page, re.MULTILINE), f"no summary row for {family!r}"
        assert family in hook.render_gaps(suite, family)


def test_generator_reads_every_marker_form(hook: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "tests" / "conformance").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conformance" / "conftest.py", tmp_path / "tests" / "conformance" / "conftest.py")
    testing = tmp_path / "src" / "vecbridge" / "testing"
    testing.mkdir(parents=True)
    (tmp_path / "src" / "vecbridge" / "backends" / "qdrant").mkdir(parents=True)
    source = textwrap.dedent('''
        import pytest
        from pytest import mark
        notimpl = pytest.mark.notimpl
        LITE = ["milvus-lite"]
        TRUE_IS_ONE = pytest.mark.never(LITE, reason="Milvus Lite: true == 1")
        pytestmark = pytest.mark.never(["faiss-memory"], reason="module | wide")

        @pytest.mark.notimpl(["chroma", "qdrant"], reason="no top-level $not")
        def test_a():
            pass

        @notimpl(["pgvector"] + LITE, reason="two " "parts", raises=ValueError)
        @TRUE_IS_ONE
        def test_b():
            pass

        @pytest.mark.parametrize("x", [1, pytest.param(2, marks=mark.notimpl("qdrant", reason="p")),
                                       pytest.param(3, id="three", marks=[TRUE_IS_ONE])])
        def test_c(x):
            pass

        class TestK:
            pytestmark = [pytest.mark.never(backends=["chroma-embedded"], reason="class")]

            def test_m(self):
                pass

        def test_d(request):
            request.applymarker(pytest.mark.notimpl(["qdrant"], reason="applied at run time"))

        @pytest.mark.notimpl(["qdrnt"], reason="a typo")
        def test_e():
            pass
    ''')
    (testing / "test_sample.py").write_text(source, encoding="utf-8")
    applied_line = source.splitlines().index("    request.applymarker(pytest.mark.notimpl([\"qdrant\"], reason=\"applied at run time\"))") + 1
    suite = hook.collect(tmp_path)
    got = {(g.test, g.kind, g.backends, g.reason, g.raises) for g in suite.gaps}
    assert got == {
        ("*", "never", ("faiss-memory",), "module | wide", None),
        ("test_a", "notimpl", ("chroma", "qdrant"), "no top-level $not", None),
        ("test_b", "notimpl", ("pgvector", "milvus-lite"), "two parts", "ValueError"),
        ("test_b", "never", ("milvus-lite",), "Milvus Lite: true == 1", None),
        ("test_c[2]", "notimpl", ("qdrant",), "p", None),
        ("test_c[three]", "never", ("milvus-lite",), "Milvus Lite: true == 1", None),
        ("TestK", "never", ("chroma-embedded",), "class", None),
        ("test_e", "notimpl", ("qdrnt",), "a typo", None),
    }
    assert suite.tests == 6
    # a marker applied at run time cannot be placed, and a backend name must exist: both warn
    assert any(f"test_sample.py:{applied_line}" in w and "cannot place" in w for w in suite.warnings), suite.warnings
    assert any("'qdrnt'" in w for w in suite.warnings), suite.warnings
    page = hook.render_matrix(suite)
    row = next(line for line in page.splitlines() if line.startswith("| `test_sample.py::test_b`"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    families = sorted(suite.forms)
    by_family = dict(zip(families, cells[1:]))
    assert by_family["chroma"] == "ok" and by_family["qdrant"] == "ok" and by_family["faiss"] == "ok"
    assert "notimpl" in by_family["pgvector"] and "ValueError" in by_family["pgvector"]
    assert "never" in by_family["milvus"] and "milvus-lite" in by_family["milvus"]
    assert "module \\| wide" in page  # a pipe in a reason does not split the table
    assert "test_sample.py::test_a" in hook.render_gaps(suite, "qdrant")


def test_generator_refuses_an_unreadable_marker(hook: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "tests" / "conformance").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conformance" / "conftest.py", tmp_path / "tests" / "conformance" / "conftest.py")
    testing = tmp_path / "src" / "vecbridge" / "testing"
    testing.mkdir(parents=True)
    (testing / "test_bad.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.notimpl(pick_backends(), reason="computed")
        def test_x():
            pass
    '''), encoding="utf-8")
    with pytest.raises(hook.MarkerError, match=r"test_bad.py:4"):
        hook.collect(tmp_path)
