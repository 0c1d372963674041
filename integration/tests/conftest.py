"""Shared by the harness's tests: the fakes beside them import by plain name."""

import sys
from pathlib import Path

# The helpers beside these tests import by plain name under --import-mode=importlib too.
sys.path.insert(0, str(Path(__file__).parent))
