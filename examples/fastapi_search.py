"""A small search service over any vecbridge URL, on FastAPI's event loop.

    pip install "vecbridge[all,embeddings]" fastapi uvicorn
    VECBRIDGE_URL="qdrant://localhost:6333?collection=docs" uvicorn examples.fastapi_search:app

    curl 'http://127.0.0.1:8000/search?q=where+is+the+cat&k=3'
    curl -X POST http://127.0.0.1:8000/search -H 'content-type: application/json' \
         -d '{"vector": [0.1, 0.2, ...], "k": 5, "where": {"lang": "en"}}'

Every request awaits the async API (vecbridge.aio): a slow database call never blocks the
other requests.  Text queries need a collection with an embedder (see docs/embeddings.md).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import vecbridge
import vecbridge.aio

URL = os.environ.get("VECBRIDGE_URL", "faiss:///.vecbridge-demo/faiss?collection=docs")
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    state["docs"] = await vecbridge.aio.open_collection(URL)
    yield
    await state["docs"].close()


app = FastAPI(title="vecbridge search", lifespan=lifespan)


class Query(BaseModel):
    vector: list[float] | None = None
    text: str | None = None
    k: int = 10
    where: dict[str, Any] | None = None


def _hits(hits: list[vecbridge.Hit]) -> list[dict[str, Any]]:
    return [{"id": h.id, "score": h.score, "metadata": h.metadata, "document": h.document} for h in hits]


@app.get("/search")
async def search_text(q: str, k: int = 10) -> list[dict[str, Any]]:
    try:
        return _hits(await state["docs"].query(text=q, k=k))
    except vecbridge.VecbridgeError as exc:
        raise HTTPException(400, str(exc)) from exc


@app.post("/search")
async def search(body: Query) -> list[dict[str, Any]]:
    try:
        if body.text is not None:
            hits = await state["docs"].query(text=body.text, k=body.k, where=body.where)
        else:
            hits = await state["docs"].query(body.vector, k=body.k, where=body.where)
    except (vecbridge.VecbridgeError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from exc
    return _hits(hits)


@app.get("/count")
async def count() -> dict[str, int]:
    return {"count": await state["docs"].count()}
