"""A broken pymilvus channel to this process's own Milvus Lite server is no lock of another process.

pymilvus shares one gRPC channel per URI; an idle one can be closed under it (Milvus Lite's
gRPC server answers a client's keepalive pings with GOAWAY "too_many_pings").  Opening the
database again then failed, and because this process's own server holds the folder's LOCK,
vecbridge said "in use by another process" (BackendLockedError), seen in the cross-database
layout tests.  The client now connects on a channel of its own.
"""

from __future__ import annotations

import vecbridge


def test_reopening_after_the_shared_channel_broke(tmp_path):
    url = f"milvus:///{tmp_path}/m.db"
    first = vecbridge.connect(url)
    first.create_collection("chan", 4).add(["a"], [[1.0, 0.0, 0.0, 0.0]])
    first._native._handler._channel.close()  # the shared channel is gone, as after a GOAWAY
    with vecbridge.connect(url) as again:
        coll = again.get_collection("chan")
        assert coll.count() == 1
        assert [r.id for r in coll.get(ids=["a"])] == ["a"]
