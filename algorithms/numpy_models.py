"""Small dense models in numpy: the ``numpy`` training engine
(``LearningConfig(engine="numpy")``), for ``logreg`` and ``mlp`` trained by
plain SGD, without torch (importing torch alone takes about 2 s, more than a
small federated run trains).

A :class:`DenseNet` is a stack of linear layers with ReLU between them,
float32, with its parameters in exactly torch's layout and order (layer by
layer, weight ``(out, in)`` then bias ``(out,)``), held in one flat vector:
the flattened parameters, message sizes (4 bytes per parameter), codecs and
aggregation are those of the torch engine's model of the same name.
Initialisation follows torch's default for ``nn.Linear`` (weight and bias
uniform in ``±1/sqrt(fan_in)``), drawn from a numpy generator seeded by the
model seed; the values differ from torch's, the distribution does not.

Training computes the exact gradient of the mean softmax cross-entropy of a
mini-batch (forward, backward by hand) and steps ``p -= lr * grad``, the
update of the torch engine's plain SGD; mini-batches are shuffled with the
device's numpy generator. Results agree with torch's to float32 rounding per
step (tested), not to the bit: the two engines give different runs of the
same distribution. The training FLOPs are :func:`algorithms.models.dense_flops`,
the numbers the torch engine counts for the same model.

Training and evaluation run numpy's BLAS on one thread (threadpoolctl), as
the torch engine runs torch: a matrix product split over threads rounds
differently, and results must not depend on the host's core count (inline
and Ray runs agree).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

from algorithms import models
from netsim.errors import InputError

MODELS = ("logreg", "mlp")


class DenseNet:
    """Linear layers of ``widths[0]`` inputs through ``widths[1:]`` units,
    ReLU between them; parameters initialised from ``seed``."""

    def __init__(self, widths: list[int], seed: int) -> None:
        self.widths = [int(w) for w in widths]
        shapes = [(o, i) for i, o in itertools.pairwise(self.widths)]
        self.size = sum(o * i + o for o, i in shapes)
        self.vector = np.empty(self.size, dtype=np.float32)
        self._grad = np.empty(self.size, dtype=np.float32)
        self.layers = _views(self.vector, shapes)  # (weight, bias) views into the vector
        self._grads = _views(self._grad, shapes)
        g = np.random.default_rng(seed)
        for weight, bias in self.layers:  # torch's order: weight, then bias, layer by layer
            bound = 1.0 / np.sqrt(weight.shape[1])
            weight[...] = g.uniform(-bound, bound, weight.shape)
            bias[...] = g.uniform(-bound, bound, bias.shape)

    def flops(self) -> tuple[float, float]:
        """FLOPs per example of inference and of a training step."""
        return models.dense_flops(self.widths)

    def get_vector(self) -> np.ndarray:
        """All parameters, flattened, float32 (a copy)."""
        return self.vector.copy()

    def set_vector(self, vector: np.ndarray) -> None:
        """Copy ``vector`` into the parameters (the caller's array is never written)."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.size,):
            raise ValueError(
                f"vector of {vector.size} values for a model of {self.size} parameters"
            )
        self.vector[...] = vector

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of the examples ``x`` (flattened to ``widths[0]`` features)."""
        a = _flat(x)
        for i, (weight, bias) in enumerate(self.layers):
            a = a @ weight.T + bias
            if i < len(self.layers) - 1:
                np.maximum(a, 0, out=a)
        return a

    def gradient(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean cross-entropy of the batch ``(x, y)`` and its exact gradient
        (a flat vector in the parameters' layout; overwritten by the next call)."""
        loss = self._backward(_flat(x), y, with_loss=True)
        return loss, self._grad

    def sgd_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        """One step of plain SGD on the batch ``(x, y)``: ``p -= lr * grad``."""
        self._backward(_flat(x), y, with_loss=False)
        grad = self._grad
        np.multiply(grad, np.float32(lr), out=grad)
        np.subtract(self.vector, grad, out=self.vector)

    def _backward(self, x: np.ndarray, y: np.ndarray, with_loss: bool) -> float:
        """The gradient into ``self._grad`` (written with ufuncs' ``out=`` and
        their ``reduce``: a step of a small model is mostly call overhead)."""
        activations = [x]
        last = len(self.layers) - 1
        for i, (weight, bias) in enumerate(self.layers):
            z = activations[-1] @ weight.T
            z += bias
            if i < last:
                np.maximum(z, 0, out=z)
            activations.append(z)
        delta = activations.pop()  # the logits, turned into their gradient in place
        n = len(y)
        rows = np.arange(n)
        delta -= np.maximum.reduce(delta, axis=1, keepdims=True)
        loss = 0.0
        if with_loss:
            loss = _mean_nll(delta, y, rows)
        np.exp(delta, out=delta)
        delta *= np.float32(1.0 / n) / np.add.reduce(delta, axis=1, keepdims=True)
        delta[rows, y] -= np.float32(1.0 / n)  # (softmax - onehot) / n
        for i in range(last, -1, -1):
            gw, gb = self._grads[i]
            a = activations[i]
            np.matmul(delta.T, a, out=gw)
            np.add.reduce(delta, axis=0, out=gb)
            if i > 0:
                delta = delta @ self.layers[i][0]
                delta *= a > 0  # ReLU's derivative, from its output
        return loss


def build(
    name: str, input_shape: tuple[int, ...], classes: int, seed: int, hidden: int = 32
) -> DenseNet:
    """The ``logreg`` or ``mlp`` model (``hidden`` units) for inputs of
    ``input_shape``, initialised from ``seed``."""
    features = int(np.prod(input_shape))
    if name == "logreg":
        return DenseNet([features, classes], seed)
    if name == "mlp":
        return DenseNet([features, hidden, classes], seed)
    raise InputError(f"engine numpy: supports models {' and '.join(MODELS)}, got {name}")


def local_train(
    model: DenseNet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: np.random.Generator,
) -> int:
    """Train in place for ``epochs`` shuffled passes of plain SGD; returns the
    examples processed."""
    if len(x) == 0:
        return 0
    x = _flat(x)
    with one_blas_thread():
        for _ in range(epochs):
            order = generator.permutation(len(x))
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                model.sgd_step(x[batch], y[batch], lr)
    return epochs * len(x)


def evaluate(model: DenseNet, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy loss on ``(x, y)``."""
    with one_blas_thread():
        logits = model.logits(x)
    shifted = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
    loss = _mean_nll(shifted, y, np.arange(len(y)))
    return float(np.mean(logits.argmax(axis=1) == y)), loss


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run numpy's matrix products on one thread."""
    with _blas().limit(limits=1, user_api="blas"):
        yield


@cache
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _mean_nll(shifted: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits (shifted by their row maximum)
    against labels ``y``."""
    total = np.add.reduce(np.exp(shifted), axis=1)
    return float(np.mean(np.log(total) - shifted[rows, y]))


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)


def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    out, offset = [], 0
    for o, i in shapes:
        weight = flat[offset : offset + o * i].reshape(o, i)
        offset += o * i
        out.append((weight, flat[offset : offset + o]))
        offset += o
    return out
