"""The official packages on Milvus, as plain functions for the layout tests (and the cross tests).

* :func:`server` -- one Milvus 2.3.5 server for the whole test process (``VECBRIDGE_TEST_MILVUS_URL``
  if given): it is heavy on a small machine, so every test module that needs one shares it.
* LangChain (``langchain-milvus`` 0.4, in the project's virtualenv): :func:`langchain_write`,
  :func:`langchain_query`.
* LlamaIndex (``llama-index-vector-stores-milvus`` 1.2 needs ``pymilvus<3``, the project runs
  pymilvus 3): driven in a virtualenv of its own (:data:`LI_PYTHON`, made by scripts/test.sh)
  through ``milvus_llamaindex_app.py`` with JSON on stdin/stdout: :func:`llamaindex`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import engines

__all__ = ["LI_PYTHON", "FixedEmbeddings", "LlamaIndexWorker", "langchain_query", "langchain_store", "langchain_write",
           "llamaindex", "server"]

_STACK = contextlib.ExitStack()
_SERVER: dict[str, str] = {}
HERE = Path(__file__).resolve().parent
#: The python of the LlamaIndex-Milvus virtualenv: scripts/test.sh makes it beside the project's
#: .venv (the virtualenv that runs the tests), or VECBRIDGE_LI_MILVUS_PYTHON names it.
LI_PYTHON = Path(os.environ.get("VECBRIDGE_LI_MILVUS_PYTHON",
                                Path(sys.prefix).parent / ".venv-li-milvus" / "bin" / "python"))


def server() -> tuple[str, str]:
    """``(vecbridge URL, pymilvus uri)`` of the Milvus server shared by this test process."""
    if not _SERVER:
        given = os.environ.get("VECBRIDGE_TEST_MILVUS_URL")
        if given:
            _SERVER.update(url=given, uri=given.replace("milvus://", "http://", 1))
        else:
            engine = _STACK.enter_context(engines.milvus_server())
            atexit.register(_STACK.close)
            _SERVER.update(url=engine.url, uri=engine.native["uri"])
    return _SERVER["url"], _SERVER["uri"]


# -- LangChain ------------------------------------------------------------------------------
class FixedEmbeddings:
    """A LangChain embedding that gives each text the vector it was told (the same on both sides)."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


def langchain_store(uri: str, collection: str, vectors: dict[str, list[float]], **kw: Any) -> Any:
    from langchain_core.embeddings import Embeddings
    from langchain_milvus import Milvus

    class _E(FixedEmbeddings, Embeddings):
        pass

    return Milvus(_E(vectors), collection_name=collection, connection_args={"uri": uri}, **kw)


def langchain_write(uri: str, collection: str, texts: list[str], metadatas: list[dict[str, Any]], ids: list[str],
                    vectors: dict[str, list[float]], **kw: Any) -> None:
    """``add_texts`` with langchain-milvus (``kw``: its constructor's, e.g. ``enable_dynamic_field``)."""
    store = langchain_store(uri, collection, vectors, **kw)
    store.add_texts(texts, metadatas=metadatas, ids=ids)
    store.client.close()


def langchain_query(uri: str, collection: str, queries: list[str], vectors: dict[str, list[float]], k: int,
                    **kw: Any) -> list[list[tuple[str, str, dict[str, Any], float]]]:
    """Per query text: ``(id, text, metadata, score)`` of langchain-milvus's
    ``similarity_search_with_score`` (the metadata without its ``pk``, which is the id)."""
    store = langchain_store(uri, collection, vectors, **kw)
    out = []
    for q in queries:
        hits = store.similarity_search_with_score(q, k=k)
        out.append([(d.metadata.get("pk"), d.page_content, {k_: v for k_, v in d.metadata.items() if k_ != "pk"},
                     float(s)) for d, s in hits])
    store.client.close()
    return out


# -- LlamaIndex -----------------------------------------------------------------------------
def llamaindex_python() -> Path:
    """:data:`LI_PYTHON`; refuses, naming the fix, when that virtualenv is missing."""
    if not LI_PYTHON.exists():
        raise RuntimeError(f"{LI_PYTHON} is missing: llama-index-vector-stores-milvus needs pymilvus<3 and runs in a "
                           "virtualenv of its own; run scripts/test.sh (it makes .venv-li-milvus) or set "
                           "VECBRIDGE_LI_MILVUS_PYTHON")
    return LI_PYTHON


def llamaindex(request: dict[str, Any]) -> Any:
    """Run ``request`` (see milvus_llamaindex_app.py) with the official LlamaIndex Milvus store in
    its own virtualenv; refuses, naming the fix, when that virtualenv is missing."""
    llamaindex_python()
    proc = subprocess.run([str(LI_PYTHON), str(HERE / "milvus_llamaindex_app.py")], input=json.dumps(request),
                          capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "PYTHONPATH": ""})
    if proc.returncode != 0:
        raise RuntimeError(f"milvus_llamaindex_app.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class LlamaIndexWorker:
    """milvus_llamaindex_app.py ``--serve`` in :data:`LI_PYTHON`: one process answering many
    requests (starting that interpreter and importing LlamaIndex takes seconds); close it when done."""

    def __init__(self) -> None:
        llamaindex_python()
        self.proc = subprocess.Popen([str(LI_PYTHON), str(HERE / "milvus_llamaindex_app.py"), "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONPATH": ""})

    def __call__(self, request: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"milvus_llamaindex_app.py --serve stopped ({self.proc.wait()}):\n{err[-3000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


if __name__ == "__main__":  # pragma: no cover - a manual check
    print(server(), file=sys.stderr)
