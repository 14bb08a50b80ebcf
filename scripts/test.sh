#!/usr/bin/env bash
# The whole test suite on a fresh machine: a virtualenv with every backend's client
# library and the engines the tests start (Chroma, Milvus 2.3.5, PostgreSQL+pgvector),
# then pytest over unit tests, the conformance suite on every backend, and migrations.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k faiss`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[all,test]"
exec .venv/bin/python -m pytest "$@"
