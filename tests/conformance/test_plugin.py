"""The suite's honesty: unknown backend names in gap markers stop the run, a refused
filter fails unless the gap table allows it, and expectations do not come from what a
backend declares about itself (a backend that lies about its index types, or refuses
every filter, fails).  Each case runs pytest in a subprocess on a small project that
uses the plugin as a third-party backend would, against the real FAISS backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vecbridge import errors
from vecbridge.testing import gaps
from vecbridge.testing.test_filters import refused_as_allowed

CONFTEST = '''
import pytest
from vecbridge.testing import BackendUnderTest
from vecbridge.testing.plugin import declare_backends

pytest_plugins = ["vecbridge.testing.plugin"]

def pytest_configure(config):
    declare_backends(config, ["faiss-memory", "chroma-memory"])

def pytest_generate_tests(metafunc):
    if "vb_backend" in metafunc.fixturenames:
        metafunc.parametrize("vb_backend", [BackendUnderTest("faiss-memory", "faiss://", False)],
                             ids=["faiss-memory"], indirect=True, scope="session")
'''


def _run(tmp_path: Path, test_source: str, conftest_extra: str = "", *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST + textwrap.dedent(conftest_extra), encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(test_source), encoding="utf-8")
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEX", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_unknown_backend_in_marker_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run(tmp_path, '''
        import pytest

        @pytest.mark.notimpl(["qdrnt"], reason="a typo")
        def test_x(vb_backend):
            pass
    ''')
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "unknown backend name 'qdrnt'" in out and "test_x" in out, out
    known = out.split("Known backends: ", 1)[1].split()[0:40]
    assert {"faiss,", "faiss-memory,", "chroma-memory,"} <= set(known), out


def test_unknown_backend_in_gap_table_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run(tmp_path, '''
        def test_x(vb_backend):
            pass
    ''', '''
        from vecbridge.testing import gaps
        gaps.add_gap(gaps.TableGap("never", ("chromma",), "index flat", "a typo", ()), index_type="flat")
    ''')
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "'chromma'" in out and "index flat" in out, out


def test_known_names_selected_or_not_and_strict_xfail(tmp_path: Path) -> None:
    """A marker naming a declared form that is not selected is fine; one naming the backend
    under test is a strict xfail; a marker without a reason is refused."""
    proc = _run(tmp_path, '''
        import pytest

        @pytest.mark.never(["chroma"], reason="not selected in this run")
        def test_other(vb_backend):
            pass

        @pytest.mark.notimpl(["faiss"], reason="fails here")
        def test_gap(vb_backend):
            assert False

        @pytest.mark.notimpl(["faiss-memory"], reason="closed gap")
        def test_closed(vb_backend):
            pass
    ''')
    out = proc.stdout + proc.stderr
    assert "1 failed, 1 passed, 1 xfailed" in out, out
    assert "XPASS(strict)" in out and "test_closed" in out, out
    proc = _run(tmp_path, '''
        import pytest

        @pytest.mark.never(["faiss"])
        def test_x(vb_backend):
            pass
    ''')
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR and "needs reason=" in proc.stdout + proc.stderr


def test_builtin_forms_are_the_conformance_run() -> None:
    """The plugin's list of vecbridge's own forms is the conformance conftest's BACKENDS."""
    import importlib.util

    from vecbridge.testing.plugin import BUILTIN_FORMS

    # this folder's conftest.py, by path: in a whole-suite run "conftest" may name another one
    spec = importlib.util.spec_from_file_location("vb_conformance_conftest", Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    conformance = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conformance)

    assert set(BUILTIN_FORMS) == set(conformance.BACKENDS) | {"qdrant-server"}


def test_refusal_needs_a_gap() -> None:
    refusal = errors.UnsupportedFilterError("refused")
    with pytest.raises(pytest.fail.Exception, match="no entry of vecbridge.testing.gaps"):
        refused_as_allowed("pgvector-embedded", {"n": 2**60}, refusal)
    with pytest.raises(pytest.fail.Exception):
        refused_as_allowed("qdrant-memory", {"n": 2**52}, refusal)  # below 2**53: no gap
    refused_as_allowed("qdrant-memory", {"n": {"$gt": 2**60}}, refusal)  # Qdrant's gap allows it
    assert gaps.filter_gap("milvus-lite", {"$not": {"n": {"$in": [1, 2**64]}}}) is not None
    assert gaps.filter_gap("pgvector-server", {"n": 2**64}) is None


def test_a_backend_lying_about_its_index_types_fails(tmp_path: Path) -> None:
    """FAISS made to declare no flat index: the suite expects one (its own table), so the
    index test fails on it, where reading the declaration would have passed."""
    proc = _run(tmp_path, '''
        from vecbridge.testing.test_collections import test_index_choices
    ''', '''
        import dataclasses
        from vecbridge.backends.faiss.client import FaissClient

        FaissClient.capabilities_declared = dataclasses.replace(FaissClient.capabilities_declared,
                                                               index_types=("hnsw",))
    ''')
    out = proc.stdout + proc.stderr
    assert "FAILED test_sample.py::test_index_choices[faiss-memory-flat]" in out, out
    assert "1 failed, 2 passed" in out, out


def test_a_backend_refusing_every_filter_fails(tmp_path: Path) -> None:
    """FAISS made to refuse every filter: the generated-filter test fails (it used to pass)."""
    proc = _run(tmp_path, '''
        from vecbridge.testing.test_filters import filter_collection, test_generated_filters_match_reference
    ''', '''
        from vecbridge import errors
        from vecbridge.base import BaseCollection

        _parse = BaseCollection._parse_where

        def refuse(self, where):
            node = _parse(self, where)
            if node is not None:
                raise errors.UnsupportedFilterError("faiss refuses every filter")
            return node

        BaseCollection._parse_where = refuse
    ''')
    out = proc.stdout + proc.stderr
    assert "FAILED test_sample.py::test_generated_filters_match_reference[faiss-memory]" in out, out
    assert "no entry of vecbridge.testing.gaps allows" in out and "1 failed" in out, out
