"""stackci: the nightly integration harness of the NPU software stack.

The harness never imports module code: it assembles an environment per combination and drives
it through the modules' CLIs, reading JSON back (see docs/design.md).
"""

__version__ = "0.1.0"
