"""The shared conformance suite, run over every backend that conftest.py configures."""

from vecbridge.testing.suite import *
