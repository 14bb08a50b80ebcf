"""Migrate a collection between any two backends: plan, pipelined copy, checkpoints, verification.

>>> import vecbridge
>>> report = vecbridge.migrate("SCHEME:///data/vectors?collection=docs",
...                            "OTHER://db.example:6333")        # doctest: +SKIP
>>> report.records_copied, report.verification.ok                # doctest: +SKIP

The pieces, in the order a run uses them: :mod:`.plan` (names, shapes, batch
size, refusals before any write), :mod:`.copier` (reader thread, bounded queue,
writer, retries), :mod:`.checkpoint` (the resumable state), :mod:`.verify`
(count, sample, full) and :mod:`.report`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .api import migrate, verify
from .checkpoint import Checkpoint, State, default_path
from .plan import DEFAULT_REQUEST_BYTES, map_name, rows_per_batch
from .report import (
    VERIFY_MODES,
    MigrationError,
    MigrationInterrupted,
    MigrationReport,
    Mismatch,
    Plan,
    RetriesExhaustedError,
    VerificationResult,
)
from .verify import compare

__all__ = [
    "DEFAULT_REQUEST_BYTES",
    "VERIFY_MODES",
    "Checkpoint",
    "MigrationError",
    "MigrationInterrupted",
    "MigrationReport",
    "Mismatch",
    "Plan",
    "RetriesExhaustedError",
    "State",
    "VerificationResult",
    "compare",
    "default_path",
    "map_name",
    "migrate",
    "rows_per_batch",
    "verify",
]


class _CallableModule(types.ModuleType):
    """Importing ``vecbridge.migrate`` rebinds the attribute ``vecbridge.migrate`` from the
    function to this module (Python sets a package's attribute to its imported submodule).
    Calling the module calls :func:`migrate`, so ``vecbridge.migrate(...)`` works either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> MigrationReport:
        return migrate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
