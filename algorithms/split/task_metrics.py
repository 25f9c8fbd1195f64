"""Per-image scores of the three tasks of the shapes set: classification
(correct or not), box regression (box IoU) and segmentation (mask IoU).

Cost: ``O(B * H * W)`` for the masks, ``O(B)`` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.split.shapes import ShapeSet


@dataclass(frozen=True)
class Predictions:
    """What a model answers for ``B`` images: ``labels`` int64 ``(B,)``,
    ``boxes`` float32 ``(B, 4)`` ``(x0, y0, x1, y1)`` in [0, 1], ``masks``
    bool ``(B, H, W)``."""

    labels: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``(..., 4)`` given as ``(x0, y0, x1,
    y1)``; a box with ``x1 < x0`` (or ``y1 < y0``) is empty. Two empty boxes
    have IoU 1 (they agree), one empty box IoU 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    union = _area(a) + _area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 1.0)


def _area(box: np.ndarray) -> np.ndarray:
    return np.clip(box[..., 2] - box[..., 0], 0, None) * np.clip(box[..., 3] - box[..., 1], 0, None)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of bool masks ``(B, H, W)``, per image; two
    empty masks have IoU 1."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    inter = (a & b).sum(axis=(-2, -1))
    union = (a | b).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def score(pred: Predictions, truth: ShapeSet, index: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of ``pred`` (for the images ``truth[index]``, in that order):
    ``correct`` (bool), ``box_iou`` and ``mask_iou`` (float64), each ``(B,)``."""
    index = np.asarray(index)
    if len(pred) != len(index):
        raise ValueError(f"{len(pred)} predictions for {len(index)} images")
    return {
        "correct": np.asarray(pred.labels) == truth.labels[index],
        "box_iou": box_iou(pred.boxes, truth.boxes[index]),
        "mask_iou": mask_iou(pred.masks, truth.masks[index]),
    }
