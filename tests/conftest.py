"""Make tests/engines.py importable as ``engines`` from every test folder, and split a run in shards.

``VECBRIDGE_TEST_SHARD=milvus-server`` keeps only the tests run on the Milvus server form
(their ids name it: ``[milvus-server…]``), ``VECBRIDGE_TEST_SHARD=rest`` everything else;
unset, every test runs.  scripts/test.sh runs the two shards side by side: the Milvus server's
tests mostly wait on the server (each collection it makes takes about a second), so they
overlap well with the rest on a 2-core machine.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# the conformance suite's fixtures and gap markers (pytest wants plugins named at the top level)
pytest_plugins = ["vecbridge.testing.plugin"]

SHARDS = ("milvus-server", "rest")


def _in_milvus_shard(item: pytest.Item) -> bool:
    return "[milvus-server" in item.nodeid or "-milvus-server" in item.nodeid.split("[", 1)[-1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = os.environ.get("VECBRIDGE_TEST_SHARD", "")
    if not shard:
        return
    if shard not in SHARDS:
        raise pytest.UsageError(f"VECBRIDGE_TEST_SHARD={shard!r}: the shards are {', '.join(SHARDS)} (or unset: all)")
    keep = [item for item in items if _in_milvus_shard(item) == (shard == "milvus-server")]
    dropped = [item for item in items if item not in set(keep)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
