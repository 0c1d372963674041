"""Run one model on the stack under test (a subprocess) and check it against onnxruntime.

The stack is `<python> -m npu_compiler run ... --json` in whatever environment `python` belongs
to; the harness never imports it. Inputs always go to the stack as a file, so the stack and the
reference see exactly the same numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from stackci import reference
from stackci.compare import compare_outputs
from stackci.errors import StackError, UsageError
from stackci.workloads import load_npz, save_npz

# The stack's exit codes (compiler-api CLI) and what kind of failure each one is.
EXIT_KINDS = {1: "error", 2: "bad-input", 3: "unsupported-operator", 4: "out-of-memory"}


def run_model(python, model_path, sku: str, *, inputs=None, seed: int = 0,
              precision: str = "fp32", atol: float = 1e-4, rtol: float = 1e-3,
              save_outputs=None, expected=None, timeout: float | None = None,
              workdir=None, time_reference: bool = True, min_cosine: float | None = None,
              batch: int | None = None, plan_cache: bool = True) -> dict:
    """The `stackci run-model --json` document for `model_path` on `sku`.

    `inputs` / `expected`: an .npz path or a dict of arrays; generated from `seed` / computed
    with onnxruntime when None. Raises UsageError for bad input, StackError when the stack fails.
    `min_cosine`: outputs match by cosine similarity instead (reduced precisions such as int8).
    `plan_cache=False` compiles afresh, so that `compile_s` measures the compiler.
    With `time_reference`, the document's `reference_s` is onnxruntime's time for the same run
    (see `reference_seconds`), the denominator of the nightly's `speed_ratio`.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise UsageError(f"model not found: {model_path}")
    model = reference.load_model(model_path, load_weights=False)
    input_names = {value.name for value in reference.model_inputs(model)}
    del model
    if inputs is None:
        feeds, inputs_label = reference.random_inputs(model_path, seed), f"seed {seed}"
    elif isinstance(inputs, dict):
        feeds, inputs_label = {k: np.asarray(v) for k, v in inputs.items()}, "inputs"
    else:
        feeds, inputs_label = load_npz(inputs), str(inputs)
    reference.check_input_names(feeds, input_names, f"{inputs_label} for model {model_path}")

    with tempfile.TemporaryDirectory(prefix="stackci-run-", dir=workdir) as scratch:
        inputs_file = Path(scratch) / "inputs.npz"
        outputs_file = Path(scratch) / "outputs.npz"
        save_npz(inputs_file, feeds)
        command = [str(python), "-m", "npu_compiler", "run", str(model_path), "--sku", sku,
                   "--precision", precision, "--inputs", str(inputs_file),
                   "--save-outputs", str(outputs_file), "--json"]
        if batch is not None:
            command += ["--batch", str(batch)]
        environment = dict(os.environ)
        if not plan_cache:
            # A plan cache of this run's own, so every compile is measured: an environment
            # variable rather than --no-cache, which compilers before compiler-api 1.1 lack.
            environment["NPU_PLAN_CACHE"] = str(Path(scratch) / "plans")
        document = _run_stack(command, model_path, sku, timeout, cwd=workdir, env=environment)
        if not outputs_file.is_file():
            raise StackError(f"the stack reported success on {model_path.name} but wrote no "
                             f"outputs file", kind="no-outputs", exit_code=1)
        actual = load_npz(outputs_file)
        if save_outputs is not None:
            Path(save_outputs).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(outputs_file, save_outputs)

    if expected is None:
        wanted = reference.reference_outputs(model_path, feeds)
    elif isinstance(expected, dict):
        wanted = expected
    else:
        wanted = load_npz(expected)
    comparison = compare_outputs(actual, wanted, atol, rtol, min_cosine=min_cosine)
    timing = {"reference_s": reference_seconds(model_path, feeds)} if time_reference else {}
    return {
        **document,
        **timing,
        "model": str(model_path),
        "sku": document.get("sku", sku),
        "precision": document.get("precision", precision),
        "tolerance": {"atol": atol, "rtol": rtol,
                      **({"cosine": min_cosine} if min_cosine is not None else {})},
        "outputs": comparison,
        "match": all(entry["match"] for entry in comparison),
    }


REFERENCE_RUNS = 2


def reference_seconds(model_path, feeds: dict[str, np.ndarray]) -> float:
    """Wall time of an onnxruntime run of `feeds`: single-threaded (one intra-op and one
    inter-op thread, so machines and loads compare), after one untimed warm-up run, session
    creation excluded, the fastest of REFERENCE_RUNS (machine load only ever adds time), as
    the stack's `warm_run_s` is the fastest of its warm runs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(model_path), options,
                                               providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        times = []
        for _ in range(REFERENCE_RUNS):
            started = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - started)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"onnxruntime cannot run {model_path}: {first_line}") from None
    return min(times)


def _run_stack(command: list[str], model_path: Path, sku: str, timeout, cwd, env=None) -> dict:
    """The stack's JSON document, or a StackError that says in one line what went wrong."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env=env)
    except subprocess.TimeoutExpired:
        raise StackError(f"the stack timed out after {timeout:g} s running {model_path.name} on "
                         f"{sku}", kind="timeout", exit_code=1)
    except OSError as exc:
        raise UsageError(f"cannot run the stack with {command[0]}: {exc.strerror or exc}")
    document = _parse_json(done.stdout)
    if done.returncode == 0:
        if document is None or "error" in document:
            raise StackError(f"the stack printed no JSON result for {model_path.name} "
                             f"({_last_line(done.stderr) or 'no output'})",
                             kind="protocol", exit_code=1)
        return document
    if done.returncode < 0:
        raise StackError(f"the stack was killed by signal {-done.returncode} running "
                         f"{model_path.name} on {sku}", kind="crash", exit_code=1)
    kind = EXIT_KINDS.get(done.returncode, "error")
    if document and "error" in document:
        message = _one_line(str(document["error"]))
        # One spelling of kinds across the harness (the compiler says out_of_memory).
        kind = str(document.get("kind") or kind).replace("_", "-")
    else:
        if "No module named npu_compiler" in done.stderr:
            kind = "missing-stack"
        message = _last_line(done.stderr) or f"exit code {done.returncode}, no message"
    raise StackError(f"stack failed on {model_path.name} ({sku}): {message}", kind=kind,
                     exit_code=done.returncode)


def _parse_json(stdout: str) -> dict | None:
    """The JSON object on stdout: the whole text, else its last line that is an object (tools
    sometimes print progress before it)."""
    for candidate in (stdout, *reversed(stdout.strip().splitlines())):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return _one_line(lines[-1]) if lines else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())
