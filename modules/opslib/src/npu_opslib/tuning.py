"""The persistent tuning cache: the best tile configuration per (SKU, kernel key, attributes),
versioned with the module and reused across processes.

`select()` consults, in order: its in-memory table, the user cache
(`$NPU_TUNING_CACHE/<sku>.json`, written only when that variable is set), then the table
shipped with the package (`npu_opslib/tuning/<sku>.json`, made by
`python -m npu_opslib tune`). A miss autotunes on the cost model as before, and the result is
written to the user cache when the process exits.

An entry is only used when nothing that decided it has changed: the file names the opslib
version it was tuned with, and each entry carries the identity of the cost model that ranked
its candidates (the SKU's parameters, the driver's performance model and the sources of the
kernel's class); the entry's configuration must also still be one of the kernel's
candidates. A stale entry is ignored, never trusted: the key is autotuned again.
"""

from __future__ import annotations

import atexit
import hashlib
import inspect
import json
import os
import sys
import threading
from importlib import metadata
from pathlib import Path

from npu_opslib.kernel import Kernel, KernelKey, TileConfig, canonical_attrs

FORMAT = "npu-tuning/1"
CACHE_ENV = "NPU_TUNING_CACHE"
SHIPPED_DIR = Path(__file__).with_name("tuning")

_lock = threading.Lock()
_tables: dict[tuple[str, str], dict] = {}  # (directory, sku name) -> entries of that file
_session: dict[str, dict] = {}  # sku name -> entries looked up or tuned by this process
_pending: dict[str, dict] = {}  # sku name -> entries tuned here, not yet in the user cache
_identities: dict[tuple[str, type], str] = {}
_flush_registered = False


def opslib_version() -> str:
    try:
        return metadata.version("npu-opslib")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def sku_name(sku) -> str:
    return getattr(sku, "name", None) or str(sku)


def _source_digest(modules) -> str:
    digest = hashlib.sha256()
    for module in modules:
        try:
            digest.update(inspect.getsource(module).encode())
        except (OSError, TypeError):
            digest.update(f"{module.__name__}: no source".encode())
    return digest.hexdigest()


def cost_model_identity(sku, kernel_class: type[Kernel]) -> str:
    """What ranked a kernel's configurations: the SKU's parameters, the driver's performance
    model and the modules defining the kernel (its `configs` and `cost` and their helpers)."""
    to_dict = getattr(sku, "to_dict", None)
    sku_text = json.dumps(to_dict() if to_dict else str(sku), sort_keys=True, default=str)
    cache_key = (sku_text, kernel_class)
    if cache_key not in _identities:
        from npu_driver import perf
        from npu_opslib import costs

        modules = {sys.modules[c.__module__] for c in kernel_class.__mro__ if c is not object}
        modules |= {perf, costs}
        digest = hashlib.sha256(sku_text.encode())
        digest.update(_source_digest(sorted(modules, key=lambda m: m.__name__)).encode())
        _identities[cache_key] = digest.hexdigest()[:24]
    return _identities[cache_key]


def entry_key(key: KernelKey, attrs: dict) -> str:
    text = json.dumps([key.to_dict(), canonical_attrs(attrs)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def user_dir() -> Path | None:
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else None


def _table(directory: Path, sku: str) -> dict:
    """The entries of `<directory>/<sku>.json`; empty when absent, unreadable or tuned with
    another opslib version (all of its entries are stale then)."""
    cache_key = (str(directory), sku)
    if cache_key not in _tables:
        _tables[cache_key] = read_entries(directory / f"{sku}.json")
    return _tables[cache_key]


def read_entries(path: Path) -> dict:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("format") != FORMAT \
            or document.get("opslib") != opslib_version():
        return {}
    entries = document.get("entries")
    return entries if isinstance(entries, dict) else {}


def lookup(sku, key: KernelKey, attrs: dict, kernel: Kernel,
           candidates: list[TileConfig]) -> tuple[TileConfig, object] | None:
    """The remembered best configuration of `key` and its cost, or None (a miss)."""
    name, wanted = sku_name(sku), entry_key(key, attrs)
    identity = cost_model_identity(sku, type(kernel))
    directories = [d for d in (user_dir(), SHIPPED_DIR) if d is not None]
    with _lock:
        for directory in directories:
            entry = _table(directory, name).get(wanted)
            if not _current(entry, kernel, identity):
                continue
            config = TileConfig.from_dict(entry["config"])
            if config not in candidates:
                continue
            _session.setdefault(name, {})[wanted] = entry
            return config, kernel.fused_cost(sku, key, config, attrs)
    return None


def _current(entry, kernel: Kernel, identity: str) -> bool:
    return (isinstance(entry, dict) and entry.get("kernel") == kernel.name
            and entry.get("cost_model") == identity and isinstance(entry.get("config"), dict))


def remember(sku, key: KernelKey, attrs: dict, kernel: Kernel, config: TileConfig,
             cost) -> None:
    """Record an autotuned result: for this process's `tune`, and for the user cache."""
    global _flush_registered
    name = sku_name(sku)
    entry = {"op_type": key.op_type, "kernel": kernel.name,
             "cost_model": cost_model_identity(sku, type(kernel)),
             "config": config.to_dict(), "cycles": cost.total_cycles}
    wanted = entry_key(key, attrs)
    with _lock:
        _session.setdefault(name, {})[wanted] = entry
        if user_dir() is not None:
            _pending.setdefault(name, {})[wanted] = entry
            if not _flush_registered:
                atexit.register(flush)
                _flush_registered = True


def flush() -> list[Path]:
    """Write the results tuned since the last flush into the user cache (merged with what
    other processes wrote there); returns the files written."""
    directory = user_dir()
    with _lock:
        pending = {sku: dict(entries) for sku, entries in _pending.items() if entries}
        _pending.clear()
    if directory is None:
        return []
    written = []
    for sku, entries in pending.items():
        path = directory / f"{sku}.json"
        write_table(path, sku, {**read_entries(path), **entries})
        with _lock:
            _tables.pop((str(directory), sku), None)
        written.append(path)
    return written


def session_entries(sku) -> dict:
    """Every entry this process looked up or tuned for `sku`."""
    with _lock:
        return dict(_session.get(sku_name(sku), {}))


def write_table(path: Path, sku: str, entries: dict) -> None:
    """`entries` as a tuning file for `sku`, replaced atomically (readers never see half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": FORMAT, "sku": sku, "opslib": opslib_version(),
                "entries": dict(sorted(entries.items()))}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    temporary.replace(path)


def reset() -> None:
    """Forget loaded files and this process's entries (the files are kept)."""
    with _lock:
        _tables.clear()
        _session.clear()
        _pending.clear()
