"""python -m npu_opslib stats [--json] | tune --sku SKU [--precision P] [--out DIR] MODEL.onnx...

stats: the library's size (kernel classes, variants, tile configurations; see stats.py).
tune:  compile the models for SKU and write the tile configuration chosen for every kernel key
       they use to DIR/<sku>.json (default: the table shipped in the package, tuning/), for
       select() to reuse instead of autotuning (see tuning.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from npu_opslib import stats, tuning


def _stats(args) -> int:
    found = stats.library_stats()
    print(json.dumps(found, indent=1) if args.json else stats.format_stats(found))
    return 0


def _tune(args) -> int:
    try:
        # The kernel keys of a model are what the compiler's passes make of it (shapes,
        # fusions, layout, precision): only the compiler knows them.
        from npu_compiler import compile_model
    except ImportError:
        return _fail("tune needs npu_compiler installed, to find the kernel keys of a model")
    from npu_driver import load_sku

    try:
        sku = load_sku(args.sku)
    except Exception as exc:  # noqa: BLE001  the driver's UnknownSKU names the known ones
        return _fail(str(exc))
    for model in args.models:
        if not Path(model).is_file():
            return _fail(f"model file not found: {model}")
        try:
            compile_model(model, sku, precision=args.precision)
        except Exception as exc:  # noqa: BLE001  any compile error, reported in one line
            return _fail(f"{model}: {exc}")
    path = Path(args.out) / f"{sku.name}.json"
    entries = tuning.session_entries(sku)
    tuning.write_table(path, sku.name, {**tuning.read_entries(path), **entries})
    print(f"{path}: {len(entries)} kernel keys from {len(args.models)} model(s)")
    return 0


def _fail(message: str) -> int:
    print(f"npu-opslib: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npu_opslib")
    commands = parser.add_subparsers(dest="command", required=True)
    stats_parser = commands.add_parser("stats", help="kernel classes, variants, configurations")
    stats_parser.add_argument("--json", action="store_true", help="print one JSON object")
    tune_parser = commands.add_parser("tune", help="write the tuning table of models on a SKU")
    tune_parser.add_argument("models", nargs="+", metavar="MODEL.onnx")
    tune_parser.add_argument("--sku", required=True)
    tune_parser.add_argument("--precision", default="fp32")
    tune_parser.add_argument("--out", default=str(tuning.SHIPPED_DIR),
                             help="directory of <sku>.json (default: the package's table)")
    args = parser.parse_args(argv)
    return _stats(args) if args.command == "stats" else _tune(args)


if __name__ == "__main__":
    sys.exit(main())
