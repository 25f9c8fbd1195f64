"""A procedural multi-task image set: one coloured shape per image, with its
class, bounding box and mask.

The data of the multi-task split-computing workload (Matsubara, Mendula &
Levorato, "Ladon", WACV 2025; ``papers.md`` section 6), generated offline
from a seed: nothing is downloaded. Each image holds one shape of a random
class (:data:`CLASSES`), position, size (25-70% of the side) and colour, on a
textured background (a colour ramp, a low-frequency wave and per-pixel noise),
so that PNG does not compress it to nothing and JPEG's quality matters. Every
colour channel of the shape differs from the background's base colour by at
least 64 levels, so the shape is always visible.

Tasks: classification (``labels``), box regression (``boxes``: the mask's
bounding box, ``(x0, y0, x1, y1)`` as fractions of the side, pixel edges
included) and segmentation (``masks``).

Cost: a handful of vectorised passes over ``n * size**2`` pixels (10,000
images of 32x32 in well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim import checks
from netsim import rng as rngs

CLASSES = ("circle", "square", "triangle", "cross")
SIZE_RANGE = (0.25, 0.70)  # shape extent, as a fraction of the image side
CHUNK = 512  # images painted at a time


@dataclass(frozen=True)
class ShapeSet:
    """``n`` images with their labels for the three tasks.

    ``images``: uint8 ``(n, size, size, 3)`` (HWC, as a camera gives);
    ``labels``: int64 ``(n,)`` indices into :data:`CLASSES`; ``boxes``:
    float32 ``(n, 4)`` ``(x0, y0, x1, y1)`` in [0, 1]; ``masks``: bool
    ``(n, size, size)``."""

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def take(self, index: np.ndarray) -> ShapeSet:
        """The images at ``index`` (an index array or a slice's indices)."""
        return ShapeSet(
            self.images[index], self.labels[index], self.boxes[index], self.masks[index]
        )


def make_shapes(n: int, *, size: int = 32, seed: int) -> ShapeSet:
    """``n`` images of ``size`` x ``size`` pixels, a function of ``seed`` alone.

    The random stream is ``netsim.rng.generator(seed, "split-shapes", size)``.
    numpy draws each attribute for all images at once, so a different ``n``
    gives different images: generate a set once and slice it (:meth:`ShapeSet.take`)."""
    checks.positive_int("n", n)
    checks.positive_int("size", size, minimum=8)
    rng = rngs.generator(seed, "split-shapes", size)
    labels = rng.integers(0, len(CLASSES), size=n)
    half = rng.uniform(*SIZE_RANGE, size=n) * size / 2  # half the shape's extent, pixels
    cx, cy = rng.uniform(half, size - half), rng.uniform(half, size - half)
    base = rng.uniform(0, 256, size=(n, 3))
    # Each channel of the shape is 64-192 levels away (mod 256) from the background's.
    colour = np.mod(base + rng.uniform(64, 192, size=(n, 3)), 256)
    texture = rng.uniform(
        [-30, -30, 2 * np.pi, 2 * np.pi, 0], [30, 30, 8 * np.pi, 8 * np.pi, 2 * np.pi], size=(n, 5)
    )
    masks = np.empty((n, size, size), dtype=bool)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, CHUNK):  # chunks that stay in cache: 3x faster than all at once
        part = slice(start, start + CHUNK)
        masks[part] = _rasterise(labels[part], cx[part], cy[part], half[part], size)
        images[part] = _paint(masks[part], base[part], colour[part], texture[part], rng)
    return ShapeSet(images, labels.astype(np.int64), mask_boxes(masks), masks)


def _rasterise(
    labels: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: np.ndarray, size: int
) -> np.ndarray:
    """Masks of the shapes, evaluated at pixel centres in coordinates scaled
    so that the shape spans [-1, 1] in both directions."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    scale = half[:, None, None].astype(np.float32)
    dx = (centres[None, None, :] - cx[:, None, None].astype(np.float32)) / scale
    dy = (centres[None, :, None] - cy[:, None, None].astype(np.float32)) / scale
    ax, ay = np.abs(dx), np.abs(dy)
    inside = [
        dx * dx + dy * dy <= 1.0,
        (ax <= 1.0) & (ay <= 1.0),
        (ay <= 1.0) & (ax <= (dy + 1.0) / 2),  # apex up: the width grows downwards
        ((ax <= 1.0) & (ay <= 1 / 3)) | ((ax <= 1 / 3) & (ay <= 1.0)),
    ]
    which = labels[:, None, None]
    return np.select([which == k for k in range(len(CLASSES))], inside, default=False)


def _paint(
    masks: np.ndarray,
    base: np.ndarray,
    colour: np.ndarray,
    texture: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Colour images: the shape on a background of the ``base`` colour with a
    ramp, a wave (``texture``: two slopes, two frequencies, a phase) and noise."""
    size = masks.shape[1]
    grid = np.arange(size, dtype=np.float32) / size
    t = texture.astype(np.float32)[:, :, None, None]
    background = (
        t[:, 0] * grid[:, None]
        + t[:, 1] * grid[None, :]
        + 16 * np.sin(t[:, 2] * grid[:, None] + t[:, 3] * grid[None, :] + t[:, 4])
    )[..., None] + base.astype(np.float32)[:, None, None, :]
    shape = colour.astype(np.float32)[:, None, None, :]
    # Uniform integer noise: as rough as Gaussian for the codecs, at a fraction of the cost.
    noise = rng.integers(-16, 17, size=background.shape, dtype=np.int8)
    image = np.where(masks[..., None], shape, background) + noise + 0.5
    return np.clip(image, 0, 255, out=image).astype(np.uint8)  # floor of x + 0.5: rounding


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Bounding boxes ``(x0, y0, x1, y1)`` of bool masks ``(n, H, W)``, as
    fractions of the side (a box covers whole pixels: ``x1 = (last column +
    1) / W``); an empty mask gives the box ``(0, 0, 0, 0)``."""
    _, h, w = masks.shape
    cols, rows = np.any(masks, axis=1), np.any(masks, axis=2)
    x0 = np.argmax(cols, axis=1)
    x1 = w - np.argmax(cols[:, ::-1], axis=1)
    y0 = np.argmax(rows, axis=1)
    y1 = h - np.argmax(rows[:, ::-1], axis=1)
    boxes = np.stack([x0 / w, y0 / h, x1 / w, y1 / h], axis=1).astype(np.float32)
    boxes[~np.any(cols, axis=1)] = 0.0
    return boxes
