"""The one git runner: every git command of the harness goes through here.

`git` raises a one-line UsageError when git fails (the caller asked for something that must
exist); `git_maybe` returns None instead (the caller is asking whether it exists).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO


def run(repo: Path, *args: str, stdout: IO | None = None) -> subprocess.CompletedProcess:
    """`git -C repo args...`, output captured as text (or stdout streamed to a file). Bytes
    that are not UTF-8 (a file's content at a commit) come through as surrogate escapes, for
    the reader to report (documents.decode), never a UnicodeDecodeError here."""
    if stdout is not None:
        return subprocess.run(["git", "-C", str(repo), *args], stdout=stdout,
                              stderr=subprocess.PIPE, text=True, errors="surrogateescape")
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          errors="surrogateescape")


def git(repo: Path, *args: str) -> str:
    """Standard output of a git command that must succeed."""
    from stackci.errors import UsageError

    done = run(repo, *args)
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def git_maybe(repo: Path, *args: str) -> str | None:
    """Standard output of a git command, or None when it fails (a missing object or path)."""
    done = run(repo, *args)
    return done.stdout if done.returncode == 0 else None


def succeeds(repo: Path, *args: str) -> bool:
    """Whether a git command exits 0 (e.g. `merge-base --is-ancestor`)."""
    return run(repo, *args).returncode == 0
