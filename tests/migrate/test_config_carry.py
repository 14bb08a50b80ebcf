"""A migration copies a collection's configuration (``coll.config``) to the target it creates.

The test registers a small FAISS plugin that keeps the configuration in a JSON file beside
the collection's folder, so that what arrives is read from that file, not through the code
under test; and one that cannot store a configuration at all (the core's default hooks, as a
third-party backend may have).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from migrate_helpers import assert_holds, fill, make_records

import vecbridge
from vecbridge.backends.faiss import FaissClient
from vecbridge.backends.faiss.collection import FaissCollection
from vecbridge.base import BaseCollection

pytest.importorskip("faiss")

SCHEME = "configfaiss"


class ConfigCollection(FaissCollection):
    """FAISS with the configuration hooks: ``<root>/<name>.config.json``."""

    def _config_file(self) -> Path:
        return Path(self._client._root) / f"{self.name}.config.json"  # type: ignore[attr-defined]

    def _read_config(self) -> dict[str, Any] | None:
        path = self._config_file()
        return json.loads(path.read_text()) if path.exists() else None

    def _write_config(self, doc: dict[str, Any]) -> None:
        self._config_file().write_text(json.dumps(doc))


class ConfigClient(FaissClient):
    backend_name = SCHEME

    def _with_config(self, coll: Any) -> Any:
        if coll is not None:
            coll.__class__ = ConfigCollection
        return coll

    def _create_collection(self, *args: Any) -> Any:
        return self._with_config(super()._create_collection(*args))

    def _get_collection(self, name: str) -> Any:
        return self._with_config(super()._get_collection(name))


class NoConfigCollection(FaissCollection):
    """A backend without configuration hooks: the core's defaults."""

    _read_config = BaseCollection._read_config
    _write_config = BaseCollection._write_config


class NoConfigClient(FaissClient):
    backend_name = "noconfigfaiss"

    def _create_collection(self, *args: Any) -> Any:
        coll = super()._create_collection(*args)
        coll.__class__ = NoConfigCollection
        return coll

    def _get_collection(self, name: str) -> Any:
        coll = super()._get_collection(name)
        if coll is not None:
            coll.__class__ = NoConfigCollection
        return coll


@pytest.fixture(autouse=True)
def _plugin() -> None:
    vecbridge.register_backend(SCHEME, ConfigClient)
    vecbridge.register_backend("noconfigfaiss", NoConfigClient)


def _source(folder: Path) -> Any:
    records = make_records(40, 8)
    with vecbridge.connect(f"{SCHEME}:///{folder}") as client:
        coll = client.create_collection("docs", 8, "cosine")
        fill(coll, records)
        coll.set_config(note="x", embedding={"model": "m", "dimension": 8})
    return records


def test_the_configuration_arrives_on_the_target(tmp_path):
    records = _source(tmp_path / "a")
    report = vecbridge.migrate(f"{SCHEME}:///{tmp_path / 'a'}?collection=docs", f"{SCHEME}:///{tmp_path / 'b'}",
                               verify="full", checkpoint=False)
    assert report.verification.ok
    stored = json.loads((tmp_path / "b" / "docs.config.json").read_text())
    assert stored == {"note": "x", "embedding": {"model": "m", "dimension": 8}}
    with vecbridge.connect(f"{SCHEME}:///{tmp_path / 'b'}") as client:
        coll = client.get_collection("docs")
        assert coll.config["note"] == "x" and coll.config["metric"] == "cosine"
        assert_holds(coll, records)


def test_a_target_that_cannot_store_it_still_gets_the_records(tmp_path):
    records = _source(tmp_path / "a")
    report = vecbridge.migrate(f"{SCHEME}:///{tmp_path / 'a'}?collection=docs",
                               f"noconfigfaiss:///{tmp_path / 'b'}", verify="full", checkpoint=False)
    assert report.verification.ok
    assert any("embedding, note" in n and "not copied" in n for n in report.notes), report.notes
    with vecbridge.connect(f"faiss:///{tmp_path / 'b'}") as client:
        assert_holds(client.get_collection("docs"), records)
