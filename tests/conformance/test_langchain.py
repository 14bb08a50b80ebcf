"""vecbridge inside LangChain, on every backend form of the conformance suite.

``TestLangChainStandard`` is LangChain's own standard suite
(``langchain_tests.integration_tests.VectorStoreIntegrationTests``, sync and async), run
unchanged: none of its tests is overridden or skipped.  The tests below it check what
that suite does not: filters, scores, relevance, MMR, retrievers, delete-all, metadata
LangChain may hold and vecbridge cannot, lazy creation, the embedder adapter.  Expected
answers come from numpy over the vectors the embedding model gives and from
``vecbridge.filters.evaluate``, never from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import vecbridge
from vecbridge.integrations.langchain import VecbridgeVectorStore
from vecbridge.testing.plugin import unique_name


def store_url(base: str, name: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}collection={name}"


@contextlib.contextmanager
def fresh_store(vb_backend, embedding, **kwargs) -> Iterator[VecbridgeVectorStore]:
    """A store on a collection that does not exist yet; the collection is dropped afterwards."""
    name = unique_name("lc")
    store = VecbridgeVectorStore(store_url(vb_backend.url, name), embedding, **kwargs)
    try:
        yield store
    finally:
        if name in store.client.list_collections():
            store.client.delete_collection(name)
        store.close()


# pytest-asyncio runs the suite's async tests; its sync tests carry the mark harmlessly
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'")
class TestLangChainStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, vb_backend) -> Iterator[VectorStore]:
        with fresh_store(vb_backend, self.get_embeddings()) as store:
            yield store
