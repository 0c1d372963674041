"""Recurrent kernels: RNN, GRU and LSTM (ONNX's gate orders, directions, layouts, clipping,
sequence lengths, peepholes). The input projection of all steps is one matmul on the array;
the recurrence is one small matmul per step."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# name -> f(x, alpha, beta); alpha/beta defaults as in the ONNX operator docs.
ACTIVATIONS = {
    "Sigmoid": (lambda x, a, b: _sigmoid(x), None, None),
    "Tanh": (lambda x, a, b: np.tanh(x), None, None),
    "Relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "Affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "LeakyRelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "ThresholdedRelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "ScaledTanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "HardSigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "Elu": (lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))), 1.0, None),
    "Softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "Softplus": (lambda x, a, b: np.logaddexp(0, x), None, None),
}


def activation_functions(names, alphas, betas, per_direction: int, directions: int):
    """One list of `per_direction` callables per direction; alphas/betas are consumed in
    order by the functions that take them."""
    alphas, betas = list(alphas or []), list(betas or [])
    functions = []
    for name in names:
        name = name.decode() if isinstance(name, bytes) else name
        match = next((k for k in ACTIVATIONS if k.lower() == str(name).lower()), None)
        if match is None:
            raise KernelError(f"activation {name!r} is not one of {', '.join(ACTIVATIONS)}")
        fn, alpha, beta = ACTIVATIONS[match]
        a = alphas.pop(0) if alpha is not None and alphas else alpha
        b = betas.pop(0) if beta is not None and betas else beta
        functions.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    if len(functions) == per_direction:
        functions = functions * directions
    if len(functions) != per_direction * directions:
        raise KernelError(f"{len(functions)} activations given, expected {per_direction} per "
                          f"direction for {directions} direction(s)")
    return [functions[i * per_direction:(i + 1) * per_direction] for i in range(directions)]


class Recurrent(Kernel):
    """Shared driver: layouts, directions, sequence lengths; subclasses define `step`."""

    unit = "array"
    gates = 1
    default_activations: tuple[str, ...] = ()
    states = 1  # hidden (and cell, for LSTM) state outputs after Y

    def _run(self, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None,
             p=None, *, hidden_size=None, direction="forward", activations=None,
             activation_alpha=None, activation_beta=None, clip=None, layout=0, **options):
        if layout:
            x = np.swapaxes(x, 0, 1)
        steps, batch, _ = x.shape
        directions = w.shape[0]
        hidden = w.shape[1] // self.gates
        if direction not in ("forward", "reverse", "bidirectional"):
            raise KernelError(f"{self.op_type}: direction {direction!r} is not forward, "
                              "reverse or bidirectional")
        if (direction == "bidirectional") != (directions == 2):
            raise KernelError(f"{self.op_type}: direction {direction} with W for "
                              f"{directions} direction(s)")
        functions = activation_functions(activations or self.default_activations,
                                         activation_alpha, activation_beta,
                                         len(self.default_activations), directions)
        lengths = (np.full(batch, steps, np.int64) if sequence_lens is None
                   else np.asarray(sequence_lens, dtype=np.int64))
        dtype = x.dtype
        x = x.astype(np.float64)
        ys, finals = [], []
        for d in range(directions):
            reverse = direction == "reverse" or d == 1
            bias = (np.zeros(2 * self.gates * hidden) if b is None
                    else b[d].astype(np.float64))
            state = [np.zeros((batch, hidden)) if s is None else s[d].astype(np.float64)
                     for s in (initial_h, initial_c)[:self.states]]
            peephole = None if p is None else p[d].astype(np.float64)
            projected = x @ w[d].T.astype(np.float64) + bias[:self.gates * hidden]
            y = np.zeros((steps, batch, hidden))
            order = range(steps - 1, -1, -1) if reverse else range(steps)
            for t in order:
                # Past its length a sequence keeps its state and outputs zeros, so a reverse
                # pass starts at each sequence's own last step.
                active = (t < lengths).reshape(batch, 1)
                new = self.step(projected[t], state, r[d].astype(np.float64),
                                bias[self.gates * hidden:], peephole, functions[d], clip,
                                hidden, options)
                state = [np.where(active, n, s) for n, s in zip(new, state)]
                y[t] = np.where(active, state[0], 0.0)
            ys.append(y)
            finals.append(state)
        y = np.stack(ys, axis=1)  # [steps, directions, batch, hidden]
        outs = [np.stack([f[i] for f in finals]) for i in range(self.states)]
        if layout:
            y = y.transpose(2, 0, 1, 3)
            outs = [o.swapaxes(0, 1) for o in outs]
        return tuple(a.astype(dtype) for a in [y] + outs)

    def step(self, xw, state, r, rb, peephole, functions, clip, hidden, options):
        raise NotImplementedError

    def output_shapes(self, key, attrs):
        x, w = key.shapes[0], key.shapes[1]
        steps, batch = (x[1], x[0]) if attrs.get("layout") else (x[0], x[1])
        hidden = w[1] // self.gates
        return [(steps, w[0], batch, hidden)] + [(w[0], batch, hidden)] * self.states

    def cost(self, sku, key, config, attrs):
        x, w = key.shapes[0], key.shapes[1]
        steps, batch = (x[1], x[0]) if attrs.get("layout") else (x[0], x[1])
        directions, gate_rows, inputs = w
        hidden = gate_rows // self.gates
        projection = costs.gemm(sku, key.precision, steps * batch, gate_rows, inputs,
                                batch=directions)
        recurrence = costs.gemm(sku, key.precision, batch, gate_rows, hidden,
                                batch=directions * steps)
        elements = steps * directions * batch * gate_rows
        itemsize = costs.itemsize(key.precision)
        gating = costs.vector(sku, key.precision, elements, 4,
                              bytes_read=0, bytes_written=elements * itemsize // self.gates)
        return projection + recurrence + gating


def _clipped(values, clip):
    return values if clip is None else np.clip(values, -clip, clip)


@register_kernel
class RNN(Recurrent):
    op_type = "RNN"
    default_activations = ("Tanh",)

    def step(self, xw, state, r, rb, peephole, functions, clip, hidden, options):
        (h,) = state
        return [functions[0](_clipped(xw + h @ r.T + rb, clip))]


@register_kernel
class GRU(Recurrent):
    op_type = "GRU"
    gates = 3
    default_activations = ("Sigmoid", "Tanh")

    def step(self, xw, state, r, rb, peephole, functions, clip, hidden, options):
        (h,) = state
        f, g = functions
        xz, xr, xh = np.split(xw, 3, axis=1)
        rz, rr, rh = np.split(r, 3, axis=0)
        bz, br, bh = np.split(rb, 3)
        z = f(_clipped(xz + h @ rz.T + bz, clip))
        reset = f(_clipped(xr + h @ rr.T + br, clip))
        if options.get("linear_before_reset", 0):
            candidate = g(_clipped(xh + reset * (h @ rh.T + bh), clip))
        else:
            candidate = g(_clipped(xh + (reset * h) @ rh.T + bh, clip))
        return [(1 - z) * candidate + z * h]


@register_kernel
class LSTM(Recurrent):
    op_type = "LSTM"
    gates = 4
    states = 2
    default_activations = ("Sigmoid", "Tanh", "Tanh")

    def step(self, xw, state, r, rb, peephole, functions, clip, hidden, options):
        h, c = state
        f, g, act_h = functions
        gates = xw + h @ r.T + rb
        xi, xo, xf, xc = np.split(gates, 4, axis=1)
        pi, po, pf = (np.zeros(hidden),) * 3 if peephole is None else np.split(peephole, 3)
        i = f(_clipped(xi + pi * c, clip))
        forget = f(_clipped(xf + pf * c, clip))
        if options.get("input_forget", 0):
            forget = 1 - i
        cell = forget * c + i * g(_clipped(xc, clip))
        o = f(_clipped(xo + po * cell, clip))
        return [o * act_h(cell), cell]
