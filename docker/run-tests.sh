#!/usr/bin/env bash
# Run vecbridge's integration suite against the real servers of docker/docker-compose.yml.
#
#     bash docker/run-tests.sh                 # the conformance suite on the four servers
#     bash docker/run-tests.sh -k filters      # extra arguments go to pytest
#     KEEP_STACK=1 bash docker/run-tests.sh    # leave the stack (and its data) running
#
# It brings the stack up and waits for every health check (`up -d --wait`), points each
# VECBRIDGE_TEST_<FAMILY>_URL at its compose service, runs the tests through
# scripts/test.sh (which makes .venv and installs vecbridge with every extra), then
# takes the stack down with its volumes, also when the tests fail or are interrupted.
# Needs Docker with the compose plugin (`docker compose`, v2.17 or later for --wait-timeout).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=(docker compose -f docker/docker-compose.yml)

down() {
    if [ -z "${KEEP_STACK:-}" ]; then
        "${COMPOSE[@]}" down -v --remove-orphans
    fi
}
trap down EXIT

if ! "${COMPOSE[@]}" up -d --wait --wait-timeout "${WAIT_TIMEOUT:-300}"; then
    "${COMPOSE[@]}" ps || true
    "${COMPOSE[@]}" logs --tail 50 || true
    exit 1
fi

export VECBRIDGE_TEST_CHROMA_URL="chroma://127.0.0.1:8000"
export VECBRIDGE_TEST_MILVUS_URL="milvus://127.0.0.1:19530"
export VECBRIDGE_TEST_QDRANT_URL="qdrant://127.0.0.1:6333"
export VECBRIDGE_TEST_PGVECTOR_URL="pgvector://user:pass@127.0.0.1:5432/db"
# Only the server forms: the embedded forms do not need Docker and run in scripts/test.sh.
export VECBRIDGE_TEST_BACKENDS="${VECBRIDGE_TEST_BACKENDS:-chroma-server,milvus-server,qdrant-server,pgvector-server}"

if [ "$#" -eq 0 ]; then
    set -- tests/conformance
fi
status=0
bash scripts/test.sh "$@" || status=$?
exit "$status"
