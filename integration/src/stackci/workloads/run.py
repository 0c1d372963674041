"""Run one model on the stack under test and check it against onnxruntime: the document of
`stackci run-model --json`, and of every workload job.

The stack is reached through the port (`python -m npu_compiler run ... --json` in the
environment `python` belongs to). Inputs always go to the stack as a file, so the stack and the
reference see exactly the same numbers.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from stackci.errors import StackError, UsageError
from stackci.stack.port import ModelRun, StackPort
from stackci.workloads import reference
from stackci.workloads.compare import compare_outputs
from stackci.workloads.npz import load_npz, save_npz

REFERENCE_RUNS = 2


def run_model(python, model_path, sku: str, *, inputs=None, seed: int = 0,
              precision: str = "fp32", atol: float = 1e-4, rtol: float = 1e-3,
              save_outputs=None, expected=None, timeout: float | None = None,
              workdir=None, time_reference: bool = True, min_cosine: float | None = None,
              batch: int | None = None, plan_cache: bool = True,
              port: StackPort | None = None,
              shapes: dict[str, tuple[int, ...]] | None = None) -> dict:
    """The `stackci run-model --json` document for `model_path` on `sku`.

    `inputs` / `expected`: an .npz path or a dict of arrays; generated from `seed` / computed
    with onnxruntime when None. Raises UsageError for bad input, StackError when the stack fails.
    `min_cosine`: outputs match by cosine similarity instead (reduced precisions such as int8).
    `plan_cache=False` compiles afresh, so that `compile_s` measures the compiler.
    `shapes` binds symbolic input dimensions of generated inputs (given inputs bind their own:
    the compiler specializes the plan to the feeds' shapes).
    With `time_reference`, the document's `reference_s` is onnxruntime's time for the same run
    (see `reference_seconds`), the denominator of the nightly's `speed_ratio`.
    """
    port = port or StackPort()
    model_path = Path(model_path)
    if not model_path.is_file():
        raise UsageError(f"model not found: {model_path}")
    model = reference.load_model(model_path, load_weights=False)
    inputs_of_model = list(reference.model_inputs(model))
    input_names = {value.name for value in inputs_of_model}
    del model
    if inputs is None:
        feeds = reference.random_inputs(model_path, seed, shapes=shapes)
        inputs_label = f"seed {seed}"
    elif isinstance(inputs, dict):
        feeds, inputs_label = {k: np.asarray(v) for k, v in inputs.items()}, "inputs"
    else:
        feeds, inputs_label = load_npz(inputs), str(inputs)
    reference.check_input_names(feeds, input_names, f"{inputs_label} for model {model_path}")
    reference.check_input_dtypes(feeds, inputs_of_model, f"{inputs_label} for model {model_path}")

    with tempfile.TemporaryDirectory(prefix="stackci-run-", dir=workdir) as scratch:
        request = ModelRun(model=model_path, sku=sku, precision=precision, batch=batch,
                           inputs=Path(scratch) / "inputs.npz",
                           outputs=Path(scratch) / "outputs.npz",
                           plan_cache=None if plan_cache else Path(scratch) / "plans",
                           timeout_s=timeout, cwd=Path(workdir) if workdir else None)
        save_npz(request.inputs, feeds)
        document = port.run_model(python, request)
        if not request.outputs.is_file():
            raise StackError(f"the stack reported success on {model_path.name} but wrote no "
                             f"outputs file", kind="no-outputs", exit_code=1)
        actual = load_npz(request.outputs)
        if save_outputs is not None:
            Path(save_outputs).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(request.outputs, save_outputs)

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


def reference_seconds(model_path, feeds: dict[str, np.ndarray]) -> float:
    """Wall time of an onnxruntime run of `feeds`: single-threaded (one intra-op and one
    inter-op thread, so machines and loads compare), after one untimed warm-up run, session
    creation excluded, the fastest of REFERENCE_RUNS (machine load only ever adds time), as
    the stack's `warm_run_s` is the fastest of its warm runs."""
    try:
        session = reference.ort_session(model_path, threads=1)
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
