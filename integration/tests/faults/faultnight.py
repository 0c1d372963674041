"""`stackci` in a subprocess, as the fault suite starts it: the real CLI, store, executor and
runner, each combination's environment built for real (uv, from the fault repository's
modules), its stack commands (`python -m npu_compiler run ...`) run through FAULTS_PYTHON, a
wrapper that injects the faults a test asks for (inject.py) before handing over to the
compiler-api CLI's stand-in (tests/fakecompiler.py)."""

import dataclasses
import os
import sys
from pathlib import Path

from stackci import cli
from stackci.nightly import run
from stackci.stack.port import StackPort


class FaultPort(StackPort):
    def environment(self, ws, combination, *, progress=None, python=None):
        built = super().environment(ws, combination, progress=progress, python=python)
        return dataclasses.replace(built, python=Path(os.environ["FAULTS_PYTHON"]))


if __name__ == "__main__":
    run.StackPort = FaultPort
    sys.exit(cli.main(sys.argv[1:]))
