"""The official LlamaIndex Milvus store (llama-index-vector-stores-milvus 1.2), driven by JSON.

Runs in the virtualenv of its own (it needs pymilvus<3; see milvus_app.py): one JSON request
on stdin, one JSON answer on the last line of stdout; or, with ``--serve``, one request per line
and one answer line each until stdin closes (one interpreter for many requests).  Requests (``uri``, ``collection`` always):

* ``{"op": "write", "dim": D, "metric": "IP", "overwrite": bool, "nodes": [{"id", "text",
  "metadata", "embedding", "source": doc id or null}]}`` -> ``{"ids": [...]}``
  (``MilvusVectorStore(...).add(nodes)``);
* ``{"op": "query", "dim": D, "metric": "IP", "queries": [vector, ...], "k": K, "filters": {key: value}
  or absent}`` -> per query ``[{"id", "text", "metadata", "score", "ref_doc_id", "source"}]``;
* ``{"op": "get", "dim": D, "metric": "IP", "ids": [...]}`` -> the nodes (``get_nodes``) the same way.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.vector_stores.milvus import MilvusVectorStore


def _store(req: dict[str, Any], overwrite: bool = False) -> MilvusVectorStore:
    return MilvusVectorStore(uri=req["uri"], collection_name=req["collection"], dim=req["dim"],
                             similarity_metric=req.get("metric", "IP"), overwrite=overwrite)


def _node(n: Any, score: float | None = None) -> dict[str, Any]:
    source = n.relationships.get(NodeRelationship.SOURCE)
    return {"id": n.node_id, "text": n.get_content(), "metadata": n.metadata, "score": score,
            "ref_doc_id": n.ref_doc_id, "source": source.node_id if source is not None else None,
            "class": type(n).__name__}


def _filters(where: dict[str, Any] | None) -> Any:
    """Equality on metadata keys, as ``MetadataFilters``."""
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

    return MetadataFilters(filters=[MetadataFilter(key=k, value=v) for k, v in where.items()]) if where else None


def main() -> None:
    if sys.argv[1:] == ["--serve"]:  # one request per line, one answer line each, until stdin closes
        for line in sys.stdin:
            print(json.dumps(answer(json.loads(line))), flush=True)
        return
    print(json.dumps(answer(json.loads(sys.stdin.read()))))


def answer(req: dict[str, Any]) -> Any:
    op = req["op"]
    if op == "write":
        store = _store(req, overwrite=bool(req.get("overwrite")))
        nodes = []
        for n in req["nodes"]:
            rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=n["source"])} if n.get("source") else {}
            nodes.append(TextNode(id_=n["id"], text=n["text"], metadata=n["metadata"], embedding=n["embedding"],
                                  relationships=rel))
        out: Any = {"ids": store.add(nodes)}
    elif op == "query":
        store = _store(req)
        out = []
        for vec in req["queries"]:
            res = store.query(VectorStoreQuery(query_embedding=vec, similarity_top_k=req["k"],
                                               filters=_filters(req.get("filters"))))
            out.append([_node(n, s) for n, s in zip(res.nodes or [], res.similarities or [])])
    elif op == "get":
        store = _store(req)
        out = [_node(n) for n in store.get_nodes(node_ids=req["ids"])]
    else:
        raise SystemExit(f"unknown op {op!r}")
    store.client.close()
    return out


if __name__ == "__main__":
    main()
