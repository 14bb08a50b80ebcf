"""Fixtures of the migration tests (data and checks live in migrate_helpers.py)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _own_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default checkpoints (.vecbridge/ in the working directory) land in a temporary folder."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def pg_folder() -> Iterator[str]:
    """One embedded PostgreSQL folder for the whole session: it is slow to start.

    Its server is stopped before the folder is removed (else it would linger on a deleted folder).
    """
    with tempfile.TemporaryDirectory(prefix="vb-mig-pg-") as tmp:
        folder = os.path.join(tmp, "pg")
        try:
            yield folder
        finally:
            if importlib.util.find_spec("vecbridge.backends.pgvector") is not None and os.path.isdir(folder):
                from vecbridge.backends.pgvector import stop_embedded

                stop_embedded(folder)
