"""What the jobs of one run share, each made once (under a lock, since workers ask
concurrently): the environment of each combination, its contracts (parsed once, by the
contracts job or whichever job asks first, and handed to every workload and conformance job),
each prepared workload, and the port to the stack."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from stackci.compat.contracts import (Contract, load_contract, provided_interfaces,
                                      shown_path)
from stackci.stack.port import StackPort
from stackci.workloads.prepare import PreparedWorkload, prepare


class Resources:
    def __init__(self, ws, port: StackPort, publish: Callable[[], Path], results=None):
        self.ws, self.port = ws, port
        self.publish = publish  # () -> index.html: the site from the store, for the last job
        # What the regressions and bisect jobs read of the store (results/regressions.py's
        # HistoryReader: reads only; what they conclude travels in their outcomes).
        self.results = results
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._made: dict[str, Any] = {}

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._made:
                self._made[key] = make()
            return self._made[key]

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()`'s value, made once per night under `key` (e.g. a workload's input hashes)."""
        return self._once(key, make)

    def environment(self, combination):
        return self._once(f"env:{combination.key}",
                          lambda: self.port.environment(self.ws, combination))

    def contracts(self, combination) -> dict[str, Contract]:
        """module -> its contract.yaml as built into the combination's environment."""
        def load():
            env = self.environment(combination)
            modules = env.combination.modules
            return {module: load_contract(Path(source) / "contract.yaml", shown=shown_path(
                        module, modules[module].commit if module in modules else None))
                    for module, source in env.sources.items()}
        return self._once(f"contracts:{combination.key}", load)

    def provided(self, combination) -> dict[str, str]:
        """interface -> version the combination provides."""
        return provided_interfaces(self.contracts(combination))

    def prepared(self, workload) -> PreparedWorkload:
        return self._once(f"workload:{workload.name}", lambda: prepare(self.ws, workload))
