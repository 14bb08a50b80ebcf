"""`vecbridge info` prints the mapping of a collection vecbridge did not create (issue 12 item 2)."""

from __future__ import annotations

import json
import subprocess
import sys

from qdrant_client import QdrantClient, models


def _info(url: str, *extra: str) -> str:
    out = subprocess.run([sys.executable, "-m", "vecbridge", "info", url, *extra], capture_output=True, text=True, check=False,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_info_prints_the_mapping_of_a_native_collection(tmp_path):
    path = tmp_path / "q"
    client = QdrantClient(path=str(path))
    client.create_collection("plain", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    client.upsert("plain", [models.PointStruct(id=7, vector=[0.1, 0.2, 0.3, 0.4],
                                               payload={"title": "seven", "year": 2020})])
    client.close()
    text = _info(f"qdrant:///{path}?collection=plain")
    assert "mapping (a collection vecbridge did not create):" in text
    section = text.split("mapping (a collection vecbridge did not create):", 1)[1].split("capabilities:", 1)[0]
    assert "4 dimensions, ip" in section  # the DOT distance written above
    assert "the point id" in section
    data = json.loads(_info(f"qdrant:///{path}?collection=plain", "--json"))
    assert data["mapping"] and any("4 dimensions" in line for line in data["mapping"])


def test_info_prints_the_framework_layout(tmp_path):
    path = tmp_path / "q"
    client = QdrantClient(path=str(path))
    client.create_collection("lc", vectors_config={"": models.VectorParams(size=3, distance=models.Distance.COSINE)})
    client.upsert("lc", [models.PointStruct(id="5b3c6a3e-8f0e-4d38-9a55-0c1d2b3e4f50", vector={"": [1.0, 0.0, 0.0]},
                                            payload={"page_content": "hello", "metadata": {"source": "a"}})])
    client.close()
    section = _info(f"qdrant:///{path}?collection=lc").split("capabilities:", 1)[0]
    assert "layout:   langchain (as langchain-qdrant" in section
    assert "page_content" in section


def test_info_prints_no_mapping_for_vecbridge_layout(tmp_path):
    import vecbridge

    url = f"qdrant:///{tmp_path}/v"
    with vecbridge.connect(url) as client:
        client.create_collection("own", 3).add(["a"], [[1.0, 0.0, 0.0]])
    assert "mapping (" not in _info(f"{url}?collection=own")
