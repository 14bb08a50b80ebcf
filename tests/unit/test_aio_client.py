"""The async client's lifecycle matches the sync one's: ``close`` twice is harmless, and every
call after ``close`` raises the same :class:`vecbridge.BackendError` as the sync client does
(it once raised a bare ``RuntimeError`` from the shut-down thread pool)."""

from __future__ import annotations

import asyncio

import pytest

import vecbridge
import vecbridge.aio
from vecbridge import errors

pytest.importorskip("faiss")


def _sync_error_after_close(url: str) -> type[BaseException]:
    """What the sync API raises for a call on a closed client: the reference."""
    client = vecbridge.connect(url)
    client.close()
    client.close()  # twice is harmless
    with pytest.raises(errors.VecbridgeError) as info:
        client.list_collections()
    return type(info.value)


def test_closed_client_raises_like_sync(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    want = _sync_error_after_close(url)

    async def main() -> None:
        client = await vecbridge.aio.connect(url)
        coll = await client.create_collection("coll", 3, "l2")
        await coll.add(["a"], [[1.0, 0.0, 0.0]])
        await client.close()
        await client.close()  # twice is harmless, as in sync
        for call in (client.list_collections(), client.delete_collection("coll"), client.get_collection("coll"),
                     coll.count(), coll.get(["a"]), coll.query([1.0, 0.0, 0.0], k=1)):
            with pytest.raises(want) as info:
                await call
            assert "closed" in str(info.value), str(info.value)

    asyncio.run(main())


def test_closed_twin_raises_while_sync_stays_open():
    """A twin made by ``wrap`` closes alone: its calls then raise, the sync client still works."""
    sync = vecbridge.connect("faiss://")
    coll = sync.create_collection("coll", 3, "l2")
    coll.add(["a"], [[1.0, 0.0, 0.0]])

    async def main() -> None:
        twin = vecbridge.aio.wrap(sync)
        acoll = await twin.get_collection("coll")
        assert await acoll.count() == 1
        await twin.close()
        await twin.close()
        with pytest.raises(errors.BackendError, match="closed"):
            await twin.list_collections()
        with pytest.raises(errors.BackendError, match="closed"):
            await acoll.count()

    asyncio.run(main())
    assert sync.get_collection("coll").count() == 1
    sync.close()
