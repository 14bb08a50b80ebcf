"""The vecbridge conformance suite, shipped so that third-party backends can run it.

Use it from a ``conftest.py``::

    pytest_plugins = ["vecbridge.testing.plugin"]
    from vecbridge.testing.suite import *  # noqa: F401,F403  (in a test module)

and parametrise the ``vb_backend`` fixture with :class:`BackendUnderTest` values
(see ``tests/conformance/conftest.py`` of vecbridge).  Expected answers come from
numpy brute force (:func:`brute_force`) and the reference filter evaluator, never
from the backend under test.
"""

from __future__ import annotations

from .data import BackendUnderTest, Dataset, brute_force, make_dataset

__all__ = ["BackendUnderTest", "Dataset", "brute_force", "make_dataset"]
