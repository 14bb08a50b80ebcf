"""Every conformance test, for ``from vecbridge.testing.suite import *`` in a test module."""

from .test_collections import *  # noqa: F401,F403
from .test_errors import *  # noqa: F401,F403
from .test_filters import *  # noqa: F401,F403
from .test_query import *  # noqa: F401,F403
from .test_records import *  # noqa: F401,F403
