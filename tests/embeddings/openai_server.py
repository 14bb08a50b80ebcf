"""A real HTTP server on 127.0.0.1 that speaks OpenAI's ``POST /v1/embeddings`` wire format,
answering with the local all-MiniLM-L6-v2 model (sentence-transformers, offline).

It behaves as OpenAI's endpoint does where the tests look: a bearer key checked (401 with
OpenAI's error body), an unknown model (404), ``dimensions`` that shorten and re-normalise
the vectors (400 above the model's size), answers in shuffled order with their ``index``,
and injected failures (``fail_next``: a list of (status, retry_after) answered before the
real ones) to exercise the client's retries.  Every request is recorded (headers, body).
"""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

MODEL = "all-MiniLM-L6-v2"


class EmbeddingServer:
    def __init__(self, model: Any, key: str = "sk-test-key", shuffle: bool = True):
        self.model, self.key, self.shuffle = model, key, shuffle
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                    failure = server.fail_next.pop(0) if server.fail_next else None
                if self.path.rstrip("/") != "/v1/embeddings":
                    return self._answer(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                if failure is not None:
                    status, retry_after = failure
                    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                    return self._answer(status, {"error": {"message": f"injected {status}", "type": "server_error"}},
                                        headers)
                if self.headers.get("Authorization") != f"Bearer {server.key}":
                    return self._answer(401, {"error": {"message": "Incorrect API key provided.",
                                                        "type": "invalid_request_error", "code": "invalid_api_key"}})
                if body.get("model") != MODEL:
                    return self._answer(404, {"error": {"message": f"The model `{body.get('model')}` does not exist",
                                                        "type": "invalid_request_error", "code": "model_not_found"}})
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                vecs = np.asarray(server.model.encode(texts, normalize_embeddings=True), dtype=np.float32)
                dims = body.get("dimensions")
                if dims is not None:
                    if dims > vecs.shape[1]:
                        return self._answer(400, {"error": {"message": f"dimensions must be at most {vecs.shape[1]}",
                                                            "type": "invalid_request_error"}})
                    vecs = vecs[:, :dims]
                    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
                data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
                if server.shuffle:
                    random.shuffle(data)
                self._answer(200, {"object": "list", "data": data, "model": MODEL,
                                   "usage": {"prompt_tokens": 1, "total_tokens": 1}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> EmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
