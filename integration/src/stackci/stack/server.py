"""A server under test: `python -m npu_serving` of a built environment, in a subprocess on a
free loopback port, ready when its readiness endpoint says so. The one long-running stack
process (stack/runner.py runs the ones that end with an answer)."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from stackci.errors import StackError
from stackci.stack.runner import kill_group, register, unregister

# Straight to the loopback, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    def __init__(self, python: str, repository, sku: str, extra: list[str] = (),
                 startup_s: float = 600.0):
        self.python, self.repository, self.sku = python, str(repository), sku
        self.extra, self.startup_s = list(extra), startup_s
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile("w+")
        self._process = None

    def __enter__(self) -> "ServerProcess":
        self._process = subprocess.Popen(
            [self.python, "-m", "npu_serving", "--model-repository", self.repository,
             "--sku", self.sku, "--port", str(self.port), "--log-level", "warning",
             *self.extra], stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own group: killed with its children (runner.py)
        register(self._process.pid)
        self._wait_ready()
        return self

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (what a benchmark reads its CPU time of)."""
        return self._process.pid if self._process is not None else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_s
        problem = "no answer"
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                with _DIRECT.open(f"http://{self.url}/v2/health/ready", timeout=5):
                    return
            except urllib.error.HTTPError as answer:
                problem = json.loads(answer.read()).get("error", "not ready")
                if "(failed)" in problem or "(unavailable)" in problem:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        self._log.seek(0)
        lines = self._log.read().strip().splitlines()
        self.__exit__(None, None, None)
        raise StackError(f"npu_serving did not become ready ({problem}; exit code "
                         f"{self._process.poll()}): {lines[-1] if lines else 'no output'}")

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._process is not None:
            kill_group(self._process.pid)
            unregister(self._process.pid)
        self._log.close()
