"""The fault suite's stand-in interpreter: applies the first rule of FAULTS_CONFIG whose
`match` occurs in the command line, then runs FAULTS_STACK (the compiler-api CLI's stand-in,
tests/fakecompiler.py) with the same arguments.

Rules: {"match": text, "do": "hang" | "slow", "s": seconds, "once": marker path}. "hang" starts
a child (a grandchild of the job) and sleeps for an hour, both named npu_compiler on their
command lines; "slow" sleeps `s` seconds first. A rule with `once` applies the first time only.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

argv = sys.argv[1:]
config = Path(os.environ.get("FAULTS_CONFIG", "/nonexistent"))
rules = json.loads(config.read_text()) if config.is_file() else []
line = " ".join(argv)
for rule in rules:
    if rule["match"] not in line:
        continue
    once = rule.get("once")
    if once:
        if Path(once).exists():
            continue
        Path(once).write_text(str(os.getpid()))
    if rule["do"] == "hang":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)",
                          "npu_compiler-grandchild", str(config)])
        time.sleep(3600)
    if rule["do"] == "slow":
        time.sleep(float(rule["s"]))
    break
os.execv(sys.executable, [sys.executable, os.environ["FAULTS_STACK"], *argv])
