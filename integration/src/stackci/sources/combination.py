"""Combinations: which version of every module, as a value.

A combination is the version vector `{module: (version, commit, tree hash)}`; its `key` hashes
the content, so two commits holding the same module trees are the same stack.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

WORKTREE = "worktree"  # the commit of a module read from the files on disk


@dataclass(frozen=True)
class ModuleVersion:
    module: str
    version: str
    commit: str
    tree_hash: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.module} {self.version} ({self.commit[:10]})"


@dataclass(frozen=True)
class Combination:
    name: str
    modules: dict[str, ModuleVersion]

    @property
    def key(self) -> str:
        """A stable hash of the version vector.

        Keyed by content (version and tree hash), not commit: two commits holding the same
        module trees are the same stack, and their results belong on the same point of a trend.
        """
        vector = {m: [mv.version, mv.tree_hash] for m, mv in sorted(self.modules.items())}
        return hashlib.sha256(json.dumps(vector, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "key": self.key,
            "modules": {m: mv.to_dict() for m, mv in self.modules.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Combination":
        return cls(data["name"], {m: ModuleVersion(**mv) for m, mv in data["modules"].items()})
