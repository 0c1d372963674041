"""`stackci fidelity record`: store a fidelity run (results/fidelity.py) as a weekly run."""

from __future__ import annotations

import json
from pathlib import Path

from stackci.cli import arg, command, db_argument
from stackci.results.fidelity import TIER, load_results, record
from stackci.results.store import Store
from stackci.workspace import Workspace


@command("fidelity record", "store a fidelity run (run_fidelity.py --json) as a weekly run", [
    arg("file", type=Path, metavar="FILE.json", help="what run_fidelity.py --json wrote"),
    db_argument(),
    arg("--json", action="store_true", help="print {run_id, jobs, passed, failed}"),
])
def fidelity_record_command(args) -> int:
    summary, results = load_results(args.file)
    ws = Workspace.discover(args.home)
    stored = record(Store.open(ws, args.db), args.file, summary, results)
    if args.json:
        print(json.dumps(stored))
    else:
        print(f"stored fidelity run {stored['run_id']} ({TIER}): {stored['jobs']} jobs, "
              f"{stored['passed']} passed, {stored['failed']} failed")
    return 0 if stored["failed"] == 0 else 1
