"""Classification losses exported by training graphs: NegativeLogLikelihoodLoss and
SoftmaxCrossEntropyLoss (reductions none, sum, mean; class weights; an ignored label)."""

from __future__ import annotations

import numpy as np

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, register_kernel


def nll_loss(log_prob, target, weight=None, reduction="mean", ignore_index=None):
    """-log_prob[n, target[n, ...], ...] weighted per class; ignored targets count zero."""
    target = np.asarray(target, dtype=np.int64)
    keep = np.ones(target.shape, dtype=bool) if ignore_index is None else (
        target != int(ignore_index))
    safe = np.where(keep, target, 0)
    picked = np.take_along_axis(log_prob, np.expand_dims(safe, 1), axis=1).squeeze(1)
    weights = np.ones(target.shape) if weight is None else np.asarray(weight)[safe]
    weights = np.where(keep, weights, 0)
    loss = -picked.astype(np.float64) * weights
    if reduction == "none":
        return loss.astype(log_prob.dtype)
    if reduction == "sum":
        return np.array(loss.sum(), dtype=log_prob.dtype)
    if reduction == "mean":
        total = weights.sum()
        return np.array(loss.sum() / total if total else 0.0, dtype=log_prob.dtype)
    raise KernelError(f"reduction {reduction!r} is not one of none, sum, mean")


class Loss(Kernel):
    ops_per_element = 3

    def output_shapes(self, key, attrs):
        return [key.shapes[1]]


@register_kernel
class NegativeLogLikelihoodLoss(Loss):
    op_type = "NegativeLogLikelihoodLoss"

    def _run(self, log_prob, target, weight=None, reduction="mean", ignore_index=None):
        return (nll_loss(log_prob, target, weight, reduction, ignore_index),)


@register_kernel
class SoftmaxCrossEntropyLoss(Loss):
    """The loss and, as a second output, the log-probabilities."""

    op_type = "SoftmaxCrossEntropyLoss"
    ops_per_element = 8

    def _run(self, scores, labels, weights=None, reduction="mean", ignore_index=None):
        shifted = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
        log_prob = (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(
            scores.dtype)
        return nll_loss(log_prob, labels, weights, reduction, ignore_index), log_prob

    def output_shapes(self, key, attrs):
        return [key.shapes[1], key.shapes[0]]
