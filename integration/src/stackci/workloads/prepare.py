"""Preparing a workload: its model (random weights, generated, or a real model's own), seeded
inputs (as the suite declares them, if it does) and onnxruntime's outputs for them, cached
under `<cache>/models/` by name, seed and content hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from stackci.workloads import reference
from stackci.workloads.generators import transformers
from stackci.workloads.generators.weights import (RANDOMIZER_VERSION, calibrate_logits,
                                                  randomize_weights)
from stackci.workloads.npz import atomic_write, load_npz, save_npz
from stackci.workloads.sources import source_path
from stackci.workloads.suite import Workload


@dataclass(frozen=True)
class PreparedWorkload:
    model_path: Path
    inputs_path: Path
    expected_path: Path
    workload: Workload | None = None

    def inputs(self) -> dict[str, np.ndarray]:
        return load_npz(self.inputs_path)

    def expected(self) -> dict[str, np.ndarray]:
        return load_npz(self.expected_path)


def prepared_paths(ws, workload: Workload) -> PreparedWorkload:
    """Where `workload`'s prepared files are (or will be), named by its content: nothing is
    made or fetched (a real model's name comes from its pinned digest)."""
    kind = workload.source.partition(":")[0]
    if kind == "builtin":
        content = hashlib.sha256(f"{workload.source};{transformers.GENERATOR_VERSION}".encode())
    elif kind == "pypi":  # the pinned digest is checked when the file is fetched
        content = hashlib.sha256(f"{workload.source};{workload.sha256}".encode())
    else:
        content = hashlib.sha256(source_path(workload).read_bytes())
    content.update(f"randomizer={RANDOMIZER_VERSION};batch={workload.batch}".encode())
    if workload.inputs:
        content.update(f"inputs={list(workload.inputs)}".encode())
    # Precision variants of a workload share its model, inputs and reference outputs.
    stem = f"{workload.model or workload.name}-{workload.seed}-{content.hexdigest()[:16]}"
    directory = ws.cache / "models"
    return PreparedWorkload(directory / f"{stem}.onnx", directory / f"{stem}.inputs.npz",
                            directory / f"{stem}.expected.npz", workload)


def prepare_model(ws, workload: Workload, *, progress: Callable[[str], None] | None = None
                  ) -> PreparedWorkload:
    """`workload`'s prepared paths with its model file made (built, copied or randomized)
    if missing; a real model's wheel is fetched into the cache first."""
    prepared = prepared_paths(ws, workload)
    prepared.model_path.parent.mkdir(parents=True, exist_ok=True)
    kind, _, spec = workload.source.partition(":")
    note = progress or (lambda message: None)
    if not prepared.model_path.exists() and kind == "builtin":
        note(f"{workload.name}: building {spec}")
        model = transformers.build_source(spec)
        atomic_write(prepared.model_path, lambda f: f.write(model.SerializeToString()))
        del model
    if not prepared.model_path.exists() and kind == "pypi":
        # Real models keep their trained weights: they are what the model was made to compute.
        source = source_path(workload, ws.cache)
        note(f"{workload.name}: copying {workload.member}")
        atomic_write(prepared.model_path, lambda f: f.write(source.read_bytes()))
    if not prepared.model_path.exists():
        note(f"{workload.name}: randomizing weights")
        model = reference.load_model(source_path(workload))
        if randomize_weights(model, workload.seed):
            calibrate_logits(model, workload.seed, workload.batch)
        atomic_write(prepared.model_path, lambda f: f.write(model.SerializeToString()))
        del model
    return prepared


def prepare(ws, workload: Workload, *, progress: Callable[[str], None] | None = None
            ) -> PreparedWorkload:
    """Randomized model, seeded inputs and onnxruntime's outputs for `workload`, cached.
    Built-in sources (transformers) are generated with their own seeded weights."""
    prepared = prepare_model(ws, workload, progress=progress)
    note = progress or (lambda message: None)
    if not prepared.inputs_path.exists():
        note(f"{workload.name}: generating inputs")
        inputs = (reference.declared_inputs(prepared.model_path, workload.inputs, workload.seed)
                  if workload.inputs else
                  reference.random_inputs(prepared.model_path, workload.seed,
                                          batch=workload.batch))
        save_npz(prepared.inputs_path, inputs)
    if not prepared.expected_path.exists():
        note(f"{workload.name}: computing reference outputs")
        outputs = reference.reference_outputs(prepared.model_path, prepared.inputs())
        save_npz(prepared.expected_path, outputs)
    return prepared
