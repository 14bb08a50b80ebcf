"""What a backend can do: one declared object per client, read by the core, the planner,
the CLI and the docs.

A backend declares a :class:`Capabilities` (a class attribute ``capabilities`` of its
client); a client whose limits depend on the server it reached (Chroma's largest batch)
refines it in ``_capabilities()``.  Nothing else in vecbridge looks at backend names to
decide what a backend can hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .types import METRICS
from .validation import INT64_MAX, INT64_MIN, MAX_ID_BYTES, PORTABLE_NAME, PORTABLE_RULE

__all__ = ["Capabilities", "capabilities_of"]


@dataclass(frozen=True)
class Capabilities:
    """The facts about a backend that the core and the migration planner act on."""

    #: Metrics ``create_collection`` accepts.
    metrics: tuple[str, ...] = METRICS
    #: Index types besides the default that ``create_collection`` accepts.
    index_types: tuple[str, ...] = ("flat", "hnsw")
    #: The largest vector dimension (``None``: the contract's 65,536).
    max_dimension: int | None = None
    #: Collection names the backend can hold, and the rule in words.
    name_pattern: re.Pattern[str] = field(default=PORTABLE_NAME, compare=False)
    name_rule: str = PORTABLE_RULE
    #: Rows one write may carry (``None``: no limit of its own).
    max_batch_rows: int | None = None
    #: Bytes one request may carry (``None``: the planner's default budget).
    max_request_bytes: int | None = None
    #: Bytes a vector component takes on the wire (4 packed float32; ~20 in JSON).
    wire_bytes_per_float: int = 4
    #: The largest id, document and JSON-encoded metadata a record may have, in UTF-8 bytes.
    max_id_bytes: int = MAX_ID_BYTES
    max_document_bytes: int | None = None
    max_metadata_bytes: int | None = None
    #: How the backend counts a record's metadata against ``max_metadata_bytes``, from the
    #: metadata and the document (default: the metadata's JSON in UTF-8).  A backend that
    #: stores metadata in another encoding measures that encoding here.
    metadata_bytes: Callable[[dict[str, Any], str | None], int] | None = field(default=None, compare=False)
    #: Integers in filters are compared exactly within this range; outside it a filter is
    #: refused (``None``: any integer).  Stored integers are always int64.
    filter_int_range: tuple[int, int] | None = (INT64_MIN, INT64_MAX)
    #: ``scan`` returns records in the order of their keys.
    ordered_scan: bool = False
    #: The client library has a native async API for this form.
    native_async: bool = False
    #: ``add``'s duplicate check holds against writers in other processes, not only in this one.
    atomic_add: bool = False
    #: Several processes may open the database at once.
    shared_between_processes: bool = True
    #: The records outlive the client (a folder, a file or a server).
    persistent: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for ``vecbridge info --json`` and the docs)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, re.Pattern):
                value = value.pattern
            elif callable(value):
                value = getattr(value, "__qualname__", "function")
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def capabilities_of(client: Any) -> Capabilities:
    """A client's capabilities; a client that declares none (a third-party object that only
    follows the :class:`~vecbridge.Client` protocol) is taken to have the contract's defaults."""
    caps = getattr(client, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()
