"""Every conformance test, for ``from vecbridge.testing.suite import *`` in a test module."""

from .test_collections import *
from .test_errors import *
from .test_filters import *
from .test_query import *
from .test_records import *
from .test_reliability import *
