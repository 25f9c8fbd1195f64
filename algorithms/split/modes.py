"""The inference modes: what the device sends, what the server computes from
it, and what each side costs in FLOPs.

=================  =====================================  ==============================
mode               device                                 server
=================  =====================================  ==============================
``local``          the three on-device models             nothing
``local_teacher``  the teacher                            nothing
``png``            PNG encoding (declared cost)           PNG decoding + the teacher
``jpeg``           JPEG encoding at a quality             JPEG decoding + the teacher
``split``          encoder + entropy coding, one stream   entropy decoding + decoder + heads
``split_per_task`` one encoder and stream per task        one decoder and head per task
=================  =====================================  ==============================

Model FLOPs are counted forward-only on the trained models; codecs and
entropy coding have declared per-pixel and per-symbol costs
(:data:`~algorithms.split.image_codecs.ENCODE_FLOPS_PER_PIXEL`,
:data:`~algorithms.split.entropy.CODING_FLOPS_PER_SYMBOL`): the simulation
never measures wall time. Decoding an image is charged as much as encoding it.

The server's answer is the results: the class (1 byte), the box (4 bytes,
coordinates quantized to 1/255) and the mask bit-packed, ``1 + 4 +
ceil(S*S/8)`` bytes for ``S x S`` images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.split import image_codecs, shapes
from algorithms.split.entropy import CODING_FLOPS_PER_SYMBOL
from algorithms.split.task_metrics import Predictions
from algorithms.split.training import TASKS, Pipelines, SplitTraining

MODES = ("local", "local_teacher", "png", "jpeg", "split", "split_per_task")
ON_DEVICE = ("local", "local_teacher")  # modes that send nothing
INFERENCE_PURPOSE = 7  # seed stream of the inference set, apart from the training sets'


@dataclass(frozen=True)
class ModeCosts:
    """Per-request FLOPs on the device and on the server, and the payload
    keys of the messages a request sends (one per message, in order)."""

    device_flops: float
    server_flops: float
    message_keys: tuple[str, ...]


def mode_costs(pipes: Pipelines, mode: str, beta: float, jpeg_quality: int) -> ModeCosts:
    flops = pipes.flops
    if mode == "local":
        return ModeCosts(flops.local, 0.0, ())
    if mode == "local_teacher":
        return ModeCosts(flops.teacher, 0.0, ())
    if mode in ("png", "jpeg"):
        size = pipes.config.image_size
        codec = image_codecs.ENCODE_FLOPS_PER_PIXEL[mode] * size * size
        return ModeCosts(codec, codec + flops.teacher, ("image",))
    tasks: tuple[str | None, ...] = (None,) if mode == "split" else TASKS
    device = server = 0.0
    for task in tasks:
        coding = CODING_FLOPS_PER_SYMBOL * pipes.latent_symbols(beta, task)
        device += flops.split_device(beta, task) + coding
        server += flops.split_server(beta, task) + coding
    keys = ("latent",) if mode == "split" else tuple(f"latent_{t}" for t in TASKS)
    return ModeCosts(device, server, keys)


def device_messages(
    pipes: Pipelines, mode: str, images: np.ndarray, beta: float, jpeg_quality: int
) -> list[list[bytes]]:
    """Per message key (see :class:`ModeCosts`), per image, the bytes sent."""
    if mode == "png":
        return [image_codecs.encode_png(images)]
    if mode == "jpeg":
        return [image_codecs.encode_jpeg(images, jpeg_quality)]
    if mode == "split":
        return [pipes.split_encode(images, beta)]
    if mode == "split_per_task":
        return [pipes.split_encode(images, beta, task) for task in TASKS]
    raise ValueError(f"mode {mode!r} sends nothing")


def server_predictions(
    pipes: Pipelines, mode: str, received: list[list[bytes]], beta: float
) -> Predictions:
    """The server's predictions from each request's messages (in key order)."""
    if mode in ("png", "jpeg"):
        images = np.stack([image_codecs.decode_image(msgs[0]) for msgs in received])
        return pipes.teacher(images)
    if mode == "split":
        return pipes.split_decode([msgs[0] for msgs in received], beta)
    per_task = {
        task: pipes.split_decode([msgs[i] for msgs in received], beta, task)
        for i, task in enumerate(TASKS)
    }
    return pipes.merge(per_task)


def pack_results(pred: Predictions) -> list[bytes]:
    """The server's answer per image: class, box (1/255 steps), bit-packed mask."""
    boxes = np.clip(np.rint(np.asarray(pred.boxes, dtype=float) * 255), 0, 255).astype(np.uint8)
    return [
        bytes([int(label) % 256]) + box.tobytes() + np.packbits(mask.ravel()).tobytes()
        for label, box, mask in zip(pred.labels, boxes, pred.masks, strict=True)
    ]


def reply_nbytes(size: int) -> int:
    return 1 + 4 + -(-size * size // 8)


def inference_set(config: SplitTraining, n: int) -> shapes.ShapeSet:
    """The images requests draw from: generated from a stream of its own, so
    never one the models were trained, validated or tested on."""
    seed = int(np.random.SeedSequence([config.seed, INFERENCE_PURPOSE]).generate_state(1)[0])
    return shapes.make_shapes(n, size=config.image_size, seed=seed)
