"""Shared pieces of the serving tests: a tiny ONNX model, a numpy backend that computes the same
thing (for protocol tests that need no compiler), and waiting for readiness."""

from __future__ import annotations

import threading
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

from npu_serving import ModelBackend, ModelConfig, ServedModel, TensorSpec

RNG = np.random.default_rng(7)
WEIGHT = RNG.standard_normal((4, 3)).astype(np.float32)
BIAS = RNG.standard_normal(3).astype(np.float32)


def expected_output(x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ WEIGHT + BIAS, 0).astype(np.float32)


def build_dense_relu(batch="N") -> onnx.ModelProto:
    """y = Relu(x @ WEIGHT + BIAS), x: [batch, 4] float32."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "weight"], ["xw"]),
            helper.make_node("Add", ["xw", "bias"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "dense_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor("weight", TensorProto.FLOAT, WEIGHT.shape, WEIGHT.ravel()),
         helper.make_tensor("bias", TensorProto.FLOAT, BIAS.shape, BIAS)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


class DenseReluBackend(ModelBackend):
    """The same function as `build_dense_relu`, in numpy; records the batch of every run."""

    def __init__(self, batch_dim: int = -1, release: threading.Event | None = None):
        self.inputs = [TensorSpec("x", "FP32", (batch_dim, 4))]
        self.outputs = [TensorSpec("y", "FP32", (batch_dim, 3))]
        self.batches: list[int] = []
        self.release = release

    def load(self) -> None:
        if self.release is not None:
            assert self.release.wait(10), "test never released the model's load"

    def infer(self, inputs):
        self.batches.append(len(inputs["x"]))
        return {"y": expected_output(inputs["x"])}


class FailingBackend(DenseReluBackend):
    def load(self) -> None:
        raise RuntimeError("plan does not fit device memory")


class AllTypesBackend(ModelBackend):
    """Echoes one input of every datatype to the output of the same datatype."""

    DATATYPES = ("BOOL", "UINT8", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES")

    def __init__(self):
        self.inputs = [TensorSpec(f"in_{t}", t, (-1,)) for t in self.DATATYPES]
        self.outputs = [TensorSpec(f"out_{t}", t, (-1,)) for t in self.DATATYPES]

    def infer(self, inputs):
        return {f"out_{t}": inputs[f"in_{t}"] for t in self.DATATYPES}


def served(name="dense", backend=None, config=ModelConfig(), version="1") -> ServedModel:
    return ServedModel(name, version, backend or DenseReluBackend(), config)


def wait_ready(client, path="/v2/health/ready", limit_s=60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if client.get(path).status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never became ready: {client.get(path).json()}")


def wait_loaded(model: ServedModel, limit_s=60.0) -> None:
    deadline = time.monotonic() + limit_s
    while model.state == "loading" and time.monotonic() < deadline:
        time.sleep(0.01)


class GatedBackend(DenseReluBackend):
    """DenseReluBackend whose executions wait for the test: each records that it started (and on
    which instance, with what input) and blocks until the test opens the gate, so scheduling
    tests observe states (both instances executing, requests waiting) instead of timing them.

    Every wait has a generous limit only so that a broken scheduler fails instead of hanging."""

    LIMIT_S = 60.0

    def __init__(self):
        super().__init__()
        self.gate = threading.Semaphore(0)
        self.started: list[tuple[int, float]] = []  # (instance, first input value) in order
        self.running = 0
        self.most_running = 0
        self._changed = threading.Condition()

    def execute(self, inputs, instance=0):
        with self._changed:
            self.started.append((instance, float(inputs["x"].flat[0])))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self._changed.notify_all()
        try:
            assert self.gate.acquire(timeout=self.LIMIT_S), "the test never opened the gate"
            return self.infer(inputs), {}
        finally:
            with self._changed:
                self.running -= 1
                self._changed.notify_all()

    def wait_started(self, count: int) -> None:
        """Until `count` executions have started (fails after LIMIT_S: they never did)."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.started) >= count, self.LIMIT_S), \
                f"{len(self.started)} executions started, expected {count}: {self.started}"

    def open(self, executions: int) -> None:
        for _ in range(executions):
            self.gate.release()


def wait_until(predicate, what: str, limit_s: float = GatedBackend.LIMIT_S) -> None:
    """Until `predicate()` holds (a state, not a duration: the limit only stops a broken
    server from hanging the test)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.002)
