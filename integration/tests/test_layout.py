"""Rules of the harness's layout that import-linter cannot see (docs/design.md, "Harness
internals"): file length, the one git runner, the one runner of stack processes."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "stackci"
LIMIT = 400
REASON = re.compile(r"over 400 lines because", re.IGNORECASE)


def sources():
    return sorted(SRC.rglob("*.py"))


def test_no_file_is_over_400_lines_without_a_reason_at_its_top():
    long = [path.relative_to(SRC) for path in sources()
            if len(path.read_text().splitlines()) > LIMIT
            and not REASON.search("\n".join(path.read_text().splitlines()[:15]))]
    assert long == []


def test_git_runs_only_through_git_py():
    found = [path.relative_to(SRC) for path in sources() if path.name != "git.py"
             and re.search(r"""\[\s*["']git["']""", path.read_text())]
    assert found == []


def test_subprocesses_start_only_in_the_runners():
    # git.py (git), stack/runner.py (stack environments), sources/build.py (uv and the base
    # interpreter, before any stack environment exists), stack/server.py (a stack's server,
    # long-running, for the load generator).
    allowed = {Path("git.py"), Path("stack/runner.py"), Path("sources/build.py"),
               Path("stack/server.py")}
    found = [path.relative_to(SRC) for path in sources()
             if "subprocess.run(" in path.read_text() or "subprocess.Popen(" in path.read_text()]
    assert set(found) <= allowed, set(found) - allowed
