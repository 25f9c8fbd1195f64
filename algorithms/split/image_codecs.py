"""Image codecs for full offloading: the device sends the whole image, PNG
(lossless) or JPEG (lossy, at a quality), through Pillow.

Options are fixed so that the bytes are a function of the pixels (and of
Pillow's zlib/libjpeg builds): PNG at zlib level 6 without ``optimize``; JPEG
baseline, 4:2:0 chroma subsampling, standard tables, no ``optimize``. The
size of a message is ``len`` of the file's bytes, headers included (for
32x32 images JPEG's tables are a good part of it, as on the wire).

The simulation never measures wall time: encoding on the device is charged
:data:`ENCODE_FLOPS_PER_PIXEL` operations per pixel (decoding the same).
Cost here (real time): linear in the pixels, about a millisecond per
32x32 image.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

# Operations per pixel, orders of magnitude for software codecs on a phone CPU.
# JPEG: RGB->YCbCr (~15), 8x8 DCT on 1.5 samples/pixel with 4:2:0 (~50 with a
# fast separable DCT), quantization (~3) and Huffman coding (~30): ~100.
# PNG: adaptive filtering tries 5 filters per byte (~60 for 3 bytes) and
# deflate's LZ77 hash-chain search at level 6 plus Huffman (~60 per byte): ~250.
ENCODE_FLOPS_PER_PIXEL: dict[str, float] = {"png": 250.0, "jpeg": 100.0}

PNG_COMPRESS_LEVEL = 6
JPEG_SUBSAMPLING = 2  # 4:2:0


def encode_png(images: np.ndarray) -> list[bytes]:
    """Each image of ``images`` (uint8 ``(B, H, W, 3)``) as a PNG file."""
    return [
        _save(image, "PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
        for image in _check(images)
    ]


def encode_jpeg(images: np.ndarray, quality: int) -> list[bytes]:
    """Each image as a baseline JPEG file at ``quality`` (1-95)."""
    if not 1 <= quality <= 95:
        raise ValueError(f"quality: expected 1..95, got {quality}")
    return [
        _save(
            image,
            "JPEG",
            quality=int(quality),
            subsampling=JPEG_SUBSAMPLING,
            optimize=False,
            progressive=False,
        )
        for image in _check(images)
    ]


def decode_image(data: bytes) -> np.ndarray:
    """The pixels of a PNG or JPEG file: uint8 ``(H, W, 3)``."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images: expected uint8 (B, H, W, 3), got {images.dtype} {tuple(images.shape)}"
        )
    return images


def _save(image: np.ndarray, format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format, **options)
    return buffer.getvalue()
