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
# The embedding tests run the real all-MiniLM-L6-v2 model on the CPU: take torch's CPU build
# (on these machines a local file; a plain `torch` would pull a CUDA build of several GB).
if [ "$(uname -m)" = "x86_64" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q torch \
        --index-url https://download.pytorch.org/whl/cpu
fi
.venv/bin/python -m pip install -q -e ".[all,test]"
# llama-index-vector-stores-milvus needs pymilvus<3 (the project runs pymilvus 3): the LlamaIndex
# Milvus layout tests drive it in a virtualenv of its own (tests/layouts/milvus_app.py).  That one
# holds only pymilvus 2.6 and the package, and reads everything else from .venv (a .pth file,
# after its own site-packages): seconds to make, where a second LlamaIndex took minutes.
if ! .venv-li-milvus/bin/python -c "import pymilvus, llama_index.vector_stores.milvus" 2>/dev/null; then
    rm -rf .venv-li-milvus
    "$PY" -m venv .venv-li-milvus
    .venv-li-milvus/bin/python -m pip install -q --no-deps "pymilvus==2.6.17" "llama-index-vector-stores-milvus==1.2.0"
    main_site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    li_site=$(.venv-li-milvus/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    echo "$main_site" > "$li_site/zz-vecbridge-venv.pth"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -n "${VECBRIDGE_TEST_SHARD:-}" ]; then
    exec .venv/bin/python -m pytest "$@"
fi
# Two shards side by side (tests/conftest.py): the tests on the Milvus server form mostly wait
# on the server, the rest mostly compute.  The Milvus shard's output follows the other's.
log=$(mktemp)
VECBRIDGE_TEST_SHARD=milvus-server .venv/bin/python -m pytest "$@" >"$log" 2>&1 &
milvus=$!
set +e
VECBRIDGE_TEST_SHARD=rest .venv/bin/python -m pytest "$@"
rest=$?
wait "$milvus"
shard=$?
set -e
echo "================ the tests on the Milvus server form (run alongside the above) ================"
cat "$log"
rm -f "$log"
# pytest exits 5 when a shard selects nothing (e.g. `bash scripts/test.sh -k faiss`): no failure
[ "$rest" -eq 5 ] && [ "$shard" -ne 5 ] && rest=0
[ "$shard" -eq 5 ] && [ "$rest" -ne 5 ] && shard=0
[ "$rest" -ne 0 ] && exit "$rest"
exit "$shard"
