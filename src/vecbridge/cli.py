"""The ``vecbridge`` command: ``migrate``, ``ls``, ``info``, ``verify``.

Exit codes (also in ``vecbridge --help``):

==== =====================================================================
0    success
1    verification found differences
2    usage error, bad URL, missing collection, or input the target cannot take
     (nothing was written)
3    runtime error: the database failed (after retries), or an unexpected error
130  interrupted (Ctrl-C or SIGTERM); a migration resumes with ``--resume``
==== =====================================================================

Errors are printed as one line on stderr, without a traceback (``--debug`` shows
it); passwords and api keys never appear in any output.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .errors import BackendError, VecbridgeError
from .url import URL, redact

__all__ = ["EXIT_DIFFERENCES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_DIFFERENCES, EXIT_USAGE, EXIT_RUNTIME, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES = """\
exit codes:
  0    success
  1    verification found differences
  2    usage error, bad URL, missing collection, or input the target cannot take (nothing written)
  3    runtime error: the database failed (after retries), or an unexpected error
  130  interrupted (Ctrl-C, SIGTERM); a migration continues with --resume"""

# The help names no backend: the schemes come from the registry (third-party ones too), and
# each backend's URL forms are in its docs page.
URL_FORMS = """\
URLs:
  SCHEME:///folder         an embedded database in a folder or file (SCHEME:////abs/path: absolute)
  SCHEME://host:port       a server (several backends take SCHEME+https://host for TLS)
  SCHEME://                in memory, gone when the command ends
  ?collection=NAME names the collection; other query parameters are the backend's options.
  'vecbridge info URL' shows what a backend can hold (its capabilities)."""


def _schemes() -> str:
    from .registry import available_schemes

    return ", ".join(available_schemes())


def _main_epilog() -> str:
    return f"""\
examples:
  vecbridge ls SCHEME:///data/vectors
  vecbridge info "SCHEME:///data/vectors?collection=docs"
  vecbridge migrate "SCHEME:///data/vectors?collection=docs" "OTHER://db.example:6333"
  vecbridge verify "SCHEME:///data/vectors?collection=docs" "OTHER://db.example:6333" --mode sample

{URL_FORMS}
  schemes: {_schemes()}

Run 'vecbridge COMMAND --help' for details.

{EXIT_CODES}"""


MIGRATE_EPILOG = f"""\
examples:
  # copy, creating the target collection with the source's dimension and metric
  vecbridge migrate "SCHEME:///data/vectors?collection=docs" "OTHER://db.example:6333?collection=docs"
  # see the plan first; reads every record, checks it against the target's limits, writes nothing
  vecbridge migrate --dry-run "SCHEME:///data/vectors?collection=docs" "OTHER://db.example:6333"
  # continue a run that was interrupted (killed, Ctrl-C, server gone)
  vecbridge migrate --resume "SCHEME:///data/vectors?collection=docs" "OTHER://db.example:6333"
  # for scripts: one JSON document on stdout, no progress
  vecbridge migrate --json --quiet --verify full SRC_URL TARGET_URL
  # four partitions at once, or as Ray tasks on a cluster
  vecbridge migrate --workers 4 SRC_URL "OTHER://db.example:6333"
  vecbridge migrate --engine ray --ray-address ray://head:10001 --workers 16 SRC_URL TARGET_URL
  # a collection vecbridge did not create, into the target's own schema; refuse any conversion
  vecbridge migrate --strict --layout native "SCHEME://db/app?collection=public.items" "OTHER://db.example:6333"

The target collection's name defaults to the source's (changed to a name the target
can hold when needed; the report says so).  A target that already holds records is
written into only with --resume or --into-existing.  A checkpoint is saved after every
written batch (default: .vecbridge/ in the working directory) and removed once the run
has finished and verified.  A failure that a retry can cure (connection refused or
dropped, timeout) is retried; any other stops the run at once, checkpoint kept.
With --workers N the source's partitions are copied at once, each with its own entry
in the checkpoint; --resume continues each where it stopped.  Before the first write
the plan lists the source's mapping (when vecbridge did not create it), the layouts,
and every value that will be converted, with its count (--strict refuses instead).

{EXIT_CODES}"""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors never echo a secret and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {redact(message)}\n")


def _size(text: str) -> int:
    """``4194304``, ``4M``, ``512K``, ``1G``."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]i?[bB]?)?\s*", text)
    if not m or int(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 2097152, 512K or 4M")
    unit = (m.group(2) or " ")[0].upper()
    return int(m.group(1)) * {" ": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit]


def _at_least(minimum: int) -> Any:
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
        return value
    return parse


_positive, _count = _at_least(1), _at_least(0)


def _build() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout (for scripts)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress and no report text; errors only")
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")

    parser = _Parser(prog="vecbridge", description="Move vector collections between databases, chosen by URL.",
                     epilog=_main_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vecbridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    m = sub.add_parser("migrate", parents=[common], help="copy a collection to another backend",
                       description="Copy a collection (ids, vectors, metadata, documents) to another backend.",
                       epilog=MIGRATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("source", metavar="SOURCE_URL", help="the collection to copy, e.g. 'SCHEME:///dir?collection=docs'")
    m.add_argument("target", metavar="TARGET_URL", help="where to copy it; ?collection=NAME is optional")
    m.add_argument("--batch-size", type=_positive, metavar="N",
                   help="records per batch (default: computed from the dimension and --max-request-bytes)")
    m.add_argument("--max-request-bytes", type=_size, metavar="SIZE", default=None,
                   help="largest request to send, e.g. 2M (default 2M: half of gRPC's 4 MB limit)")
    again = m.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue an interrupted migration from its checkpoint")
    again.add_argument("--restart", action="store_true",
                       help="discard the checkpoint of an interrupted migration and copy everything again")
    m.add_argument("--into-existing", action="store_true",
                   help="allow upserting into a target collection that already holds records")
    m.add_argument("--verify", choices=["none", "count", "sample", "full"], default="sample",
                   help="how to check the copy (default: sample)")
    m.add_argument("--sample-size", type=_positive, default=1000, metavar="N",
                   help="records compared by --verify sample (default 1000)")
    m.add_argument("--dry-run", action="store_true",
                   help="print the plan and check every source record against the target; write nothing")
    m.add_argument("--checkpoint", metavar="PATH", help="the checkpoint file (default: .vecbridge/migrate-<hash>.json)")
    m.add_argument("--retries", type=_count, default=5, metavar="N",
                   help="retries of a database call that failed for a reason a retry can cure (connection refused or "
                        "dropped, timeout, server starting), with backoff and reconnection (default 5)")
    m.add_argument("--backoff", type=float, default=1.0, metavar="SECONDS",
                   help="first wait before a retry; it doubles each time, up to 30 s (default 1)")
    m.add_argument("--workers", type=_positive, metavar="N",
                   help="partitions of the source copied at once, each with its own writer and checkpoint entry "
                        "(default: 4 into a server, 1 into an embedded or in-memory target; on --resume, the "
                        "interrupted run's); --verify full compares that many partitions at once")
    m.add_argument("--engine", choices=["threads", "ray"], default="threads",
                   help="run the partition copies in this process (threads, the default) or as Ray tasks (ray: "
                        "pip install \"vecbridge[ray]\")")
    m.add_argument("--ray-address", metavar="ADDR",
                   help="the Ray cluster for --engine ray (default: RAY_ADDRESS, else a local instance)")
    m.add_argument("--strict", action="store_true",
                   help="refuse the copy, before anything is written, if any value would be converted (reading a "
                        "collection vecbridge did not create, or writing a framework layout); the plan lists every "
                        "conversion with its count either way")
    m.add_argument("--layout", choices=["vecbridge", "native", "langchain", "llamaindex"],
                   help="the layout of the target collection to create (default: vecbridge's); passed to the target "
                        "as its URL option layout=, which must agree if the URL has one")
    m.add_argument("--reembed", metavar="SPEC",
                   help="embed every document again with this model (PROVIDER:MODEL[?options]) into a target of its "
                        "dimension; records without a document are refused before any write")

    se = sub.add_parser("search", parents=[common], help="answer a text query on a collection with an embedder",
                        description="Embed the text with the collection's own model and print the nearest records: "
                                    "id, score, the document's first line and the metadata.",
                        epilog="example:\n  vecbridge search \"SCHEME:///data/vectors?collection=docs\" "
                               "\"where is the cat?\" -k 3 --where '{\"lang\": \"en\"}'\n\n" + EXIT_CODES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    se.add_argument("url", metavar="URL", help="a URL with ?collection=NAME")
    se.add_argument("text", metavar="TEXT", help="the query")
    se.add_argument("-k", type=_positive, default=10, metavar="N", help="hits to print (default 10)")
    se.add_argument("--where", type=_json_filter, metavar="JSON", help="a filter, e.g. '{\"lang\": \"en\"}'")

    ls = sub.add_parser("ls", parents=[common], help="list the collections of a database",
                        description="List collections with their record counts, dimensions and metrics.",
                        epilog="example:\n  vecbridge ls SCHEME:///data/vectors\n\n" + EXIT_CODES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.add_argument("url", metavar="URL")

    info = sub.add_parser("info", parents=[common], help="describe one collection",
                          description="Show one collection: dimension, metric, index, record count, its configuration, "
                                      "and the capabilities of its backend.",
                          epilog="example:\n  vecbridge info \"SCHEME:///data/vectors?collection=docs\"\n\n" + EXIT_CODES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("url", metavar="URL", help="a URL with ?collection=NAME")

    v = sub.add_parser("verify", parents=[common], help="compare a target collection with its source",
                       description="Compare a collection with its copy; exit code 1 when they differ.",
                       epilog="example:\n  vecbridge verify \"SCHEME:///a?collection=docs\" \"OTHER:///b\" "
                              "--mode sample\n\n" + EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("source", metavar="SOURCE_URL")
    v.add_argument("target", metavar="TARGET_URL", help="?collection=NAME defaults to the source's name")
    v.add_argument("--mode", choices=["count", "sample", "full"], default="full",
                   help="count only, a random sample, or every record (default: full)")
    v.add_argument("--sample-size", type=_positive, default=1000, metavar="N")
    v.add_argument("--batch-size", type=_positive, metavar="N")
    v.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="--mode full: partitions of the source compared at once (default 1)")
    return parser


# -- output ----------------------------------------------------------------------------
def _out(args: argparse.Namespace, data: dict[str, Any], lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    elif not args.quiet:
        print("\n".join(lines))


def _warn(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"vecbridge: warning: {redact(message)}", file=sys.stderr, flush=True)


# -- commands -------------------------------------------------------------------------
def _cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import DEFAULT_REQUEST_BYTES, migrate

    report = migrate(args.source, args.target, batch_size=args.batch_size, resume=args.resume,
                     restart=args.restart, into_existing=args.into_existing, verify=args.verify,
                     sample_size=args.sample_size, dry_run=args.dry_run, checkpoint=args.checkpoint,
                     progress=not args.quiet, max_request_bytes=args.max_request_bytes or DEFAULT_REQUEST_BYTES,
                     retries=args.retries, backoff=args.backoff, on_retry=lambda msg: _warn(args, msg),
                     reembed=args.reembed, workers=args.workers, engine=args.engine, ray_address=args.ray_address,
                     strict=args.strict, layout=args.layout)
    data = report.to_dict()
    problems = report.plan.problems if report.plan is not None else []
    if problems:  # a dry run that found what a real run would refuse: the same error, the same code
        data.update(exit_code=EXIT_USAGE, error=redact("; ".join(problems)), error_type="MigrationError")
    _out(args, data, report.summary())
    if problems:
        if not args.json:  # the problems are in the plan printed above; say it once on stderr as well
            print(f"vecbridge: error: {redact('; '.join(problems))}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if report.ok else EXIT_DIFFERENCES


def _describe(coll: Any) -> dict[str, Any]:
    return {"name": coll.name, "count": int(coll.count()), "dimension": int(coll.dimension),
            "metric": str(coll.metric), "index": dict(getattr(coll, "index", {}) or {})}


def _cmd_ls(args: argparse.Namespace) -> int:
    import vecbridge

    url = URL.parse(args.url)
    with vecbridge.connect(url.with_query(collection=None)) as client:
        # a collection that cannot be opened is listed with the reason instead of failing the listing
        describe = getattr(client, "describe_collections", None)  # a third-party client may lack it
        entries = describe() if describe is not None else [{"name": n} for n in client.list_collections()]
        rows = []
        for e in entries:
            if not e.get("error"):
                try:
                    rows.append({**_describe(client.get_collection(e["name"])), "layout": e.get("layout", "vecbridge")})
                    continue
                except VecbridgeError as exc:
                    e = {**e, "error": str(exc)}
            rows.append({"name": e["name"], "layout": e.get("layout"), "error": redact(str(e["error"]))})
    shown = url.with_query(collection=None).render()
    lines = []
    if rows:
        width = max(4, *(len(r["name"]) for r in rows))
        lines.append(f"{'NAME':<{width}}  {'RECORDS':>12}  {'DIMENSION':>9}  {'METRIC':<6}  LAYOUT")
        lines += [f"{r['name']:<{width}}  {r['count']:>12,}  {r['dimension']:>9}  {r['metric']:<6}  {r['layout']}"
                  if "error" not in r else f"{r['name']:<{width}}  cannot be opened: {r['error']}" for r in rows]
    else:
        lines.append(f"no collections in {shown}")
    _out(args, {"url": shown, "collections": rows}, lines)
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    import vecbridge

    from .capabilities import capabilities_of

    url = URL.parse(args.url)
    coll = vecbridge.open_collection(url)
    try:
        config = getattr(coll, "config", None)
        caps = capabilities_of(getattr(coll, "_client", None)).to_dict()
        data = {"url": url.with_query(collection=None).render(), "backend": url.scheme, **_describe(coll),
                "config": config if isinstance(config, dict) else {}, "capabilities": caps,
                "mapping": _mapping_lines(coll)}
    finally:
        getattr(coll, "close", lambda: None)()
    index = ", ".join(f"{k}={v}" for k, v in data["index"].items()) or "default"
    lines = [f"collection: {data['name']}", f"url:        {data['url']}", f"backend:    {data['backend']}",
             f"records:    {data['count']:,}", f"dimension:  {data['dimension']}", f"metric:     {data['metric']}",
             f"index:      {index}", "config:"]
    lines += [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(data["config"].items())] or ["  (none)"]
    if data["mapping"]:
        lines.append("mapping (a collection vecbridge did not create):")
        lines += [f"  {line}" for line in data["mapping"]]
    lines.append("capabilities:")
    lines += [f"  {k}: {_plain(v)}" for k, v in data["capabilities"].items()]
    _out(args, data, lines)
    return EXIT_OK


def _mapping_lines(coll: Any) -> list[str]:
    """How a native or framework-layout collection maps onto records (CONTRACT section 7), in words."""
    mapping = getattr(coll, "mapping", None)
    if mapping is None or not hasattr(mapping, "describe"):
        return []
    lines = list(mapping.describe())
    layout = getattr(mapping, "layout", None)
    if layout in ("langchain", "llamaindex"):
        from .layouts import FRAMEWORK_LAYOUTS

        known = FRAMEWORK_LAYOUTS.get((layout, getattr(getattr(coll, "_client", None), "backend_name", "")))
        if known is not None:  # what the mapping's own lines do not say already
            lines += [line for line in known.describe() if line not in lines]
    return lines


def _plain(value: Any) -> str:
    """A capability for people: lists joined, None as 'no limit', numbers with separators."""
    if value is None:
        return "no limit"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return f"{value:,}"


def _cmd_verify(args: argparse.Namespace) -> int:
    from .migrate import verify

    result = verify(args.source, args.target, mode=args.mode, sample_size=args.sample_size,
                    batch_size=args.batch_size, progress=not args.quiet, workers=args.workers)
    lines = [result.summary()] + [f"  {m.id!r}: {m.field}: {m.detail}" for m in result.mismatches[:20]]
    if result.mismatch_count > 20:
        lines.append(f"  ... and {result.mismatch_count - 20:,} more")
    _out(args, {**result.to_dict(), "source": redact(args.source), "target": redact(args.target)}, lines)
    return EXIT_OK if result.ok else EXIT_DIFFERENCES


def _json_filter(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--where is JSON, e.g. '{{\"lang\": \"en\"}}': {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--where is a JSON object (a filter dict)")
    return value


def _cmd_search(args: argparse.Namespace) -> int:
    import vecbridge

    url = URL.parse(args.url)
    coll = vecbridge.open_collection(url)
    try:
        hits: list[Any] = coll.query(text=args.text, k=args.k, where=args.where)  # type: ignore[assignment]
    finally:
        coll.close()  # type: ignore[attr-defined]
    rows = [{"id": h.id, "score": h.score, "distance": h.distance, "document": h.document, "metadata": h.metadata}
            for h in hits]
    lines = []
    for h in hits:
        first = (h.document or "").strip().splitlines()[0] if (h.document or "").strip() else ""
        lines.append(f"{h.score:8.4f}  {h.id}  {first[:100]}")
        if h.metadata:
            lines.append(f"          {json.dumps(h.metadata, ensure_ascii=False)}")
    if not hits:
        lines.append("no hits")
    _out(args, {"url": url.with_query(collection=None).render(), "collection": coll.name, "query": args.text,
                "hits": rows}, lines)
    return EXIT_OK


_COMMANDS = {"migrate": _cmd_migrate, "ls": _cmd_ls, "info": _cmd_info, "verify": _cmd_verify,
             "search": _cmd_search}


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BackendError):
        return EXIT_RUNTIME
    if isinstance(exc, (VecbridgeError, ValueError)):
        return EXIT_USAGE  # bad URL, missing collection, a shape or record the target cannot take
    return EXIT_RUNTIME


def _fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    if isinstance(exc, KeyboardInterrupt):
        text = str(exc) or "interrupted"
    elif isinstance(exc, (VecbridgeError, ValueError)):
        text = str(exc)
    else:
        text = f"unexpected error: {type(exc).__name__}: {exc}"
    text = redact(" ".join(text.split()))  # one line, no secret
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    prefix = "vecbridge: " if code == EXIT_INTERRUPTED else "vecbridge: error: "
    print(prefix + text, file=sys.stderr, flush=True)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "exit_code": code, "error": text,
                          "error_type": type(exc).__name__}, ensure_ascii=False))
    return code


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("terminated")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _build().parse_args(argv)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not in the main thread: leave signals alone
        pass
    try:
        return _COMMANDS[args.command](args)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        return _fail(args, exc, _exit_code(exc))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass


if __name__ == "__main__":
    raise SystemExit(main())
