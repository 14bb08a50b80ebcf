"""Make tests/engines.py importable as ``engines`` from every test folder."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# the conformance suite's fixtures and gap markers (pytest wants plugins named at the top level)
pytest_plugins = ["vecbridge.testing.plugin"]
