"""The culprit search end to end against a real throwaway git repository.

A tiny fake module tree: opslib holds per-operator costs, compiler a fixed overhead and the
kernels it needs, driver a clock. The probe reads them at each module's probed commit with
`git show`, as a build of that vector would see them; a module with a BROKEN file at the
probed commit "does not build" and is untestable.
"""

import subprocess
from datetime import datetime, timedelta

import pytest

from stackci.regressions import (
    BAD, UNTESTABLE, FindingKind, Point, Series, SeriesKey, SubprocessGit, Team, Untestable,
    criterion_for, detect, from_finding, render_json, run, start_search, team_reports)

WORKLOADS = {"convnet": ["Conv", "Conv", "Gemm"], "mlp": ["Gemm", "Gemm"]}
T0 = datetime(2026, 12, 1, 2, 0)


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def write(repo, path, text):
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def commit(repo, message, files=None, remove=()):
    for path, text in (files or {}).items():
        write(repo, path, text)
    for path in remove:
        (repo / path).unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "ci")
    for module, version in (("driver", "2.1.2"), ("opslib", "1.3.1"), ("compiler", "1.6.0")):
        write(repo, f"modules/{module}/pyproject.toml",
              f'[project]\nname = "npu-{module}"\nversion = "{version}"\n')
    commit(repo, "initial", {
        "modules/driver/clock.txt": "1\n",
        "modules/opslib/costs/Conv.txt": "100\n", "modules/opslib/costs/Gemm.txt": "40\n",
        "modules/opslib/provides.txt": "direct\nwinograd\n",
        "modules/compiler/cost.txt": "7\n", "modules/compiler/needs.txt": "direct\n",
        "docs/notes.md": "notes\n"})
    return repo


def show(repo, commit_sha, path):
    done = subprocess.run(["git", "-C", str(repo), "show", f"{commit_sha}:{path}"],
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def make_probe(repo, workload, calls=None):
    def probe(vector):
        if calls is not None:
            calls.append({m: e.commit for m, e in vector.items()})
        for module, entry in vector.items():
            if show(repo, entry.commit, f"modules/{module}/BROKEN") is not None:
                raise Untestable(f"{module} at {entry.commit[:7]} does not build")
        ops_at, compiler_at = vector["opslib"].commit, vector["compiler"].commit
        cycles = sum(int(show(repo, ops_at, f"modules/opslib/costs/{op}.txt"))
                     for op in WORKLOADS[workload])
        cycles += int(show(repo, compiler_at, "modules/compiler/cost.txt"))
        provided = show(repo, ops_at, "modules/opslib/provides.txt").split()
        needed = show(repo, compiler_at, "modules/compiler/needs.txt").split()
        # A kernel the compiler needs and opslib lost falls back to a slow path.
        cycles += 500 * sum(1 for kernel in needed if kernel not in provided)
        return float(cycles)
    return probe


def vector_at(repo, sha):
    history = SubprocessGit(repo)
    return {m: history.module_version(m, sha) for m in ("driver", "opslib", "compiler")}


def nightly_series(repo, shas, workload):
    """What the nightly would store: one point per night on the master track."""
    key = SeriesKey(workload, "npu-edge", "fp32", "total_cycles", "master")
    points = []
    for night, sha in enumerate(shas):
        vector = vector_at(repo, sha)
        points.append(Point(night + 1, T0 + timedelta(days=night), vector,
                            make_probe(repo, workload)(vector)))
    return Series.of(key, points)


def regressions_between(repo, good_sha, bad_sha):
    found = {}
    for workload in WORKLOADS:
        findings = detect(nightly_series(repo, [good_sha, bad_sha], workload))
        found[workload] = [f for f in findings if f.regressed]
    return found


def search(repo, finding, workload, calls=None, max_probes=None, state=None):
    criterion = criterion_for(finding)
    state = state or start_search(finding.last_good.vector, finding.first_bad.vector,
                                  criterion)
    return run(state, make_probe(repo, workload, calls), SubprocessGit(repo),
               max_probes=max_probes)


def test_names_the_module_and_commit_and_skips_the_unbuildable(repo):
    good = commit(repo, "docs: unrelated", {"docs/notes.md": "more notes\n"})
    c_readme = commit(repo, "opslib: readme", {"modules/opslib/README.md": "kernels\n"})
    commit(repo, "compiler: refactor, same cost", {"modules/compiler/README.md": "passes\n"})
    broken = commit(repo, "opslib: half a change", {"modules/opslib/BROKEN": "syntax\n"})
    fixed = commit(repo, "opslib: finish the change", remove=["modules/opslib/BROKEN"])
    commit(repo, "driver: unrelated", {"modules/driver/README.md": "device\n"})
    culprit = commit(repo, "opslib: Conv tiles", {"modules/opslib/costs/Conv.txt": "130\n"})
    commit(repo, "docs: unrelated again", {"docs/notes.md": "even more\n"})
    commit(repo, "opslib: comments", {"modules/opslib/README.md": "kernels, tiles\n"})
    bad = git(repo, "rev-parse", "HEAD")

    found = regressions_between(repo, good, bad)
    assert found["mlp"] == []                      # Gemm's cost did not move
    [finding] = found["convnet"]
    assert finding.kind is FindingKind.CHANGE
    assert (finding.size.before, finding.size.after) == (247.0, 307.0)

    calls = []
    done = search(repo, finding, "convnet", calls)
    assert done.done
    verdict = done.modules.verdict
    assert (verdict.kind, verdict.modules) == ("module", ("opslib",))
    [bisection] = done.bisections
    assert bisection.result.first_bad == culprit and bisection.result.exact
    assert bisection.verdicts[broken] == UNTESTABLE
    assert bisection.verdicts[fixed] != BAD
    # Only opslib ever moved during its bisection; the commit range skipped non-opslib ones.
    assert [c.commit for c in bisection.commits][:2] == [c_readme, broken]
    module_probes = len(done.modules.evidence) - 2     # driver, opslib, compiler moved alone
    assert module_probes == 3
    assert all(call["compiler"] == vector_at(repo, good)["compiler"].commit and
               call["driver"] == vector_at(repo, good)["driver"].commit
               for call in calls[module_probes:])

    regression = from_finding(finding, T0)
    regression = type(regression)(**{**regression.__dict__, "search": done})
    owner_of = {"opslib": Team("kernels", "@npu/kernels")}.get
    [report] = team_reports([regression], owner_of)
    posted = render_json(report, owner_of)
    assert report.team.name == "kernels"
    assert posted["regressions"][0]["commits"] == [culprit]
    assert culprit[:12] in posted["body"] and "untestable" in posted["body"]


def test_a_range_of_untestable_commits_then_the_first_testable_bad_one(repo):
    good = git(repo, "rev-parse", "HEAD")
    commit(repo, "opslib: start", {"modules/opslib/README.md": "a\n"})
    broken = commit(repo, "opslib: break the build", {"modules/opslib/BROKEN": "x\n"})
    costly = commit(repo, "opslib: Conv cost, still broken",
                    {"modules/opslib/costs/Conv.txt": "150\n"})
    first_testable = commit(repo, "opslib: build again", remove=["modules/opslib/BROKEN"])
    commit(repo, "opslib: more", {"modules/opslib/README.md": "b\n"})
    bad = git(repo, "rev-parse", "HEAD")

    [finding] = regressions_between(repo, good, bad)["convnet"]
    done = search(repo, finding, "convnet")
    [bisection] = done.bisections
    assert bisection.result.untestable == (broken, costly)
    assert bisection.result.first_bad == first_testable
    assert not bisection.result.exact
    assert "untestable" in bisection.result.describe()


def test_only_two_modules_moved_together_regress_an_interaction(repo):
    good = git(repo, "rev-parse", "HEAD")
    commit(repo, "compiler: docs", {"modules/compiler/README.md": "x\n"})
    needs = commit(repo, "compiler: prefer winograd",
                   {"modules/compiler/needs.txt": "direct\nwinograd\n"})
    commit(repo, "docs", {"docs/notes.md": "y\n"})
    drops = commit(repo, "opslib: retire winograd", {"modules/opslib/provides.txt": "direct\n"})
    commit(repo, "driver: clock", {"modules/driver/README.md": "z\n"})
    bad = git(repo, "rev-parse", "HEAD")

    found = regressions_between(repo, good, bad)
    [finding] = found["convnet"]
    assert len(found["mlp"]) == 1            # the fallback costs every workload here
    done = search(repo, finding, "convnet")
    verdict = done.modules.verdict
    assert verdict.kind == "interaction"
    assert verdict.groups == (("opslib", "compiler"),) or \
        verdict.groups == (("compiler", "opslib"),)
    assert "only" in verdict.describe(finding.first_bad.vector)
    rows = {e.moved: e.verdict for e in done.modules.evidence}
    assert rows[("driver",)] == "good" and rows[("opslib",)] == "good"
    assert rows[("compiler",)] == "good"
    assert {b.module: b.result.first_bad for b in done.bisections} == \
        {"compiler": needs, "opslib": drops}


def test_a_search_stopped_by_the_budget_resumes_from_its_stored_state(repo):
    import json

    from stackci.regressions import CulpritSearch

    good = git(repo, "rev-parse", "HEAD")
    shas = [commit(repo, f"opslib: step {i}", {"modules/opslib/README.md": f"{i}\n"})
            for i in range(6)]
    culprit = commit(repo, "opslib: Conv", {"modules/opslib/costs/Conv.txt": "111\n"})
    shas += [commit(repo, f"opslib: after {i}", {"modules/opslib/README.md": f"a{i}\n"})
             for i in range(5)]
    [finding] = regressions_between(repo, good, shas[-1])["convnet"]

    nights, state, calls = 0, None, []
    while state is None or not state.done:
        state = search(repo, finding, "convnet", calls, max_probes=1, state=state)
        state = CulpritSearch.from_dict(json.loads(json.dumps(state.to_dict())))
        nights += 1
    [bisection] = state.bisections
    assert bisection.result.first_bad == culprit
    assert len(calls) == nights <= 4          # one probe a night, log2(12) in all
