"""``vecbridge migrate --layout`` and ``--strict``: parsed, passed on, refused with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vecbridge
from vecbridge.cli import main

pytest.importorskip("faiss")


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # default checkpoints go to .vecbridge/ here


def _source(root: Path) -> str:
    with vecbridge.connect(f"faiss:///{root}") as client:
        coll = client.create_collection("docs", 3, "l2")
        coll.upsert(["1", "2"], np.eye(2, 3, dtype=np.float32), [{"n": 1}, {"n": 2}], ["a", None])
    return f"faiss:///{root}?collection=docs"


def test_layout_choices_are_the_contracts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["migrate", "--layout", "haystack", "faiss:///x?collection=a", "faiss:///y"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["migrate", "--help"])
    out = capsys.readouterr().out
    assert "--strict" in out and "--layout {vecbridge,native,langchain,llamaindex}" in out


def test_the_report_and_the_dry_run_show_the_layouts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _source(tmp_path / "a")
    target = f"faiss:///{tmp_path / 'b'}?collection=copy"
    assert main(["migrate", "--dry-run", "--layout", "vecbridge", src, target]) == 0
    assert "layout:     source vecbridge, target vecbridge" in capsys.readouterr().out
    assert main(["migrate", "--json", "--quiet", "--strict", src, target]) == 0  # nothing to convert
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["plan"]["target_layout"] == "vecbridge" and data["plan"]["strict"] is True


def test_a_layout_the_target_cannot_make_exits_2_and_writes_nothing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = _source(tmp_path / "a")
    target = f"faiss:///{tmp_path / 'b'}?collection=copy"
    assert main(["migrate", "--quiet", "--layout", "llamaindex", src, target]) == 2
    assert "not known on the faiss backend" in capsys.readouterr().err
    assert main(["migrate", "--json", "--quiet", "--dry-run", "--layout", "langchain", src, target]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["error_type"] == "MigrationError" and data["plan"]["target_layout"] == "langchain"
    with vecbridge.connect(f"faiss:///{tmp_path / 'b'}") as client:
        assert client.list_collections() == []
