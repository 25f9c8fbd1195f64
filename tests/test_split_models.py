"""The ML core of split computing (papers.md section 6, "Ladon"): the shapes
set's labels agree with its masks; the entropy coder round-trips the latent
exactly and its size is what the model's bits promise; codecs round-trip;
training is deterministic and cached; the FLOPs order the modes as designed.

Models are the TINY preset, trained once per session in a temporary cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from algorithms.split import entropy, image_codecs, shapes, task_metrics, training
from algorithms.split.training import TASKS, TINY, Pipelines, TrainedModels


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``NETSIM_CACHE`` for the session: CI never reads or writes a home cache."""
    path = tmp_path_factory.mktemp("netsim-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETSIM_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def models(cache_dir: Path) -> TrainedModels:
    return training.trained(TINY)


@pytest.fixture(scope="session")
def pipes(models: TrainedModels) -> Pipelines:
    return Pipelines(models)


@pytest.fixture(scope="session")
def test_set() -> shapes.ShapeSet:
    return training.dataset(TINY, "test")


# ---------------------------------------------------------------- data and metrics
def test_boxes_are_the_masks_bounding_boxes_and_images_are_deterministic() -> None:
    data = shapes.make_shapes(300, size=32, seed=5)
    assert data.images.shape == (300, 32, 32, 3) and data.images.dtype == np.uint8
    assert set(np.unique(data.labels)) == set(range(len(shapes.CLASSES)))
    for box, mask in zip(data.boxes, data.masks, strict=True):
        rows, cols = np.nonzero(mask)
        expected = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / 32
        np.testing.assert_allclose(box, expected, atol=1 / 32)
    extent = (data.boxes[:, 2:] - data.boxes[:, :2]).max(axis=1)
    assert extent.min() >= shapes.SIZE_RANGE[0] - 2 / 32
    assert extent.max() <= shapes.SIZE_RANGE[1] + 2 / 32
    again = shapes.make_shapes(300, size=32, seed=5)
    assert np.array_equal(again.images, data.images) and np.array_equal(again.masks, data.masks)
    assert not np.array_equal(shapes.make_shapes(300, size=32, seed=6).images, data.images)


def test_shapes_stand_out_from_their_background() -> None:
    data = shapes.make_shapes(200, size=32, seed=1)
    pixels = data.images.astype(float)
    inside = (pixels * data.masks[..., None]).sum(axis=(1, 2)) / data.masks.sum(axis=(1, 2))[
        :, None
    ]
    outside_mask = ~data.masks
    outside = (pixels * outside_mask[..., None]).sum(axis=(1, 2)) / outside_mask.sum(axis=(1, 2))[
        :, None
    ]
    assert np.abs(inside - outside).max(axis=1).min() > 30


def test_iou_of_identical_disjoint_and_empty() -> None:
    a = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 0.2, 0.2]])
    b = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(task_metrics.box_iou(a, b), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(task_metrics.box_iou([0, 0, 1, 1], [0, 0, 0.5, 1]), 0.5)
    masks = np.zeros((3, 4, 4), bool)
    other = masks.copy()
    masks[0, :2] = True
    other[0, :1] = True
    other[1, 0, 0] = True
    np.testing.assert_allclose(task_metrics.mask_iou(masks, other), [0.5, 0.0, 1.0])


def test_score_of_the_truth_is_perfect(test_set: shapes.ShapeSet) -> None:
    index = np.arange(10, 20)
    truth = task_metrics.Predictions(
        test_set.labels[index], test_set.boxes[index], test_set.masks[index]
    )
    scores = task_metrics.score(truth, test_set, index)
    assert scores["correct"].all()
    np.testing.assert_allclose(scores["box_iou"], 1.0)
    np.testing.assert_allclose(scores["mask_iou"], 1.0)


# ---------------------------------------------------------------- codecs
def test_png_round_trips_exactly_and_jpeg_loses_with_quality(test_set: shapes.ShapeSet) -> None:
    images = test_set.images[:20]
    png = image_codecs.encode_png(images)
    assert png == image_codecs.encode_png(images)  # deterministic bytes
    assert np.array_equal(np.stack([image_codecs.decode_image(b) for b in png]), images)
    errors, sizes = [], []
    for quality in (90, 50, 10):
        jpeg = image_codecs.encode_jpeg(images, quality)
        decoded = np.stack([image_codecs.decode_image(b) for b in jpeg])
        assert decoded.shape == images.shape
        errors.append(np.abs(decoded.astype(int) - images).mean())
        sizes.append(sum(map(len, jpeg)))
    assert errors[0] < errors[1] < errors[2]
    assert sizes[0] > sizes[1] > sizes[2]
    with pytest.raises(ValueError, match="quality"):
        image_codecs.encode_jpeg(images, 0)


# ---------------------------------------------------------------- entropy coding
def test_coder_round_trips_and_out_of_support_values_are_clamped_first() -> None:
    import torch

    from algorithms.split.models import EntropyBottleneck

    bottleneck = EntropyBottleneck(3).eval()
    with torch.no_grad():
        bottleneck.log_scale.copy_(torch.tensor([-2.0, 0.0, 2.0]))
        bottleneck.mean.copy_(torch.tensor([0.0, 0.4, -3.0]))
    r = bottleneck.support
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(4, 3, 5, 7, generator=gen) * torch.tensor([0.5, 3.0, 60.0]).view(1, 3, 1, 1)
    assert y.abs().max() > r  # some values lie beyond the support
    q, rate_input = bottleneck.quantize(y)
    assert torch.equal(q, rate_input)
    assert q.abs().max() == r and torch.equal(q, torch.round(y).clamp(-r, r))
    prior = bottleneck.prior()
    for z in q.numpy().astype(np.int64):
        data = entropy.encode(z, prior)
        assert np.array_equal(entropy.decode(data, z.shape, prior), z)
    with pytest.raises(ValueError, match="support"):
        entropy.encode(np.full((3, 5, 7), r + 1), prior)
    np.testing.assert_allclose(prior.pmf().sum(axis=1), 1.0, rtol=1e-12)


def test_split_latents_decode_exactly(pipes: Pipelines, test_set: shapes.ShapeSet) -> None:
    images = test_set.images[:32]
    for beta in TINY.betas:
        latents = pipes.latents(images, beta)
        assert latents.shape == (32, *pipes.latent_shape) and latents.dtype == np.int64
        assert np.abs(latents).max() <= entropy.SUPPORT
        payloads = pipes.split_encode(images, beta)
        assert np.array_equal(pipes.decode_latents(payloads, beta), latents)
    for task in TASKS:
        beta = TINY.per_task_betas[0]
        payloads = pipes.split_encode(images, beta, task)
        assert np.array_equal(
            pipes.decode_latents(payloads, beta, task), pipes.latents(images, beta, task)
        )


def test_extreme_images_still_round_trip(pipes: Pipelines) -> None:
    """Saturated and noise images push the encoder hardest: what is coded is
    clamped, and decoded exactly."""
    size = TINY.image_size
    rng = np.random.default_rng(0)
    images = np.stack(
        [
            np.zeros((size, size, 3), np.uint8),
            np.full((size, size, 3), 255, np.uint8),
            rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        ]
    )
    beta = TINY.betas[0]
    payloads = pipes.split_encode(images, beta)
    assert np.array_equal(pipes.decode_latents(payloads, beta), pipes.latents(images, beta))


def test_coded_size_is_the_coders_and_close_to_the_models_bits(
    pipes: Pipelines, test_set: shapes.ShapeSet
) -> None:
    """Sizes are ``len`` of the coder's output (whole 32-bit words); the model's
    ``-log2 p`` estimate is within 10% + 64 bits per image of the real size."""
    images = test_set.images
    sizes = {}
    for beta in TINY.betas:
        payloads = pipes.split_encode(images, beta)
        actual = 8 * np.array([len(p) for p in payloads], dtype=float)
        assert (actual % 32 == 0).all() and (actual > 0).all()
        estimate = pipes.estimated_bits(images, beta)
        assert (np.abs(actual - estimate) <= 0.1 * estimate + 64).all()
        assert abs(actual.mean() - estimate.mean()) <= 0.05 * estimate.mean() + 32
        sizes[beta] = actual.mean()
    small, large = min(TINY.betas), max(TINY.betas)
    assert sizes[small] > 1.3 * sizes[large]  # a smaller rate weight spends more bits


def test_split_decode_answers_every_task(pipes: Pipelines, test_set: shapes.ShapeSet) -> None:
    images = test_set.images[:16]
    n, size = len(images), TINY.image_size
    shared = pipes.split_decode(pipes.split_encode(images, TINY.betas[0]), TINY.betas[0])
    assert shared.labels.shape == (n,) and shared.boxes.shape == (n, 4)
    assert shared.masks.shape == (n, size, size) and shared.masks.dtype == bool
    assert ((shared.labels >= 0) & (shared.labels < 4)).all()
    beta = TINY.per_task_betas[0]
    per_task = {t: pipes.split_decode(pipes.split_encode(images, beta, t), beta, t) for t in TASKS}
    assert (per_task["box"].labels == -1).all() and not per_task["class"].masks.any()
    merged = pipes.merge(per_task)
    assert np.array_equal(merged.labels, per_task["class"].labels)
    assert np.array_equal(merged.masks, per_task["mask"].masks)
    with pytest.raises(ValueError, match="no split model"):
        pipes.split_encode(images, 0.123)


# ---------------------------------------------------------------- training and cache
def test_training_is_deterministic_and_each_model_has_its_own_stream(
    models: TrainedModels,
) -> None:
    """A second training, asking for one beta only, gives bit-identical
    teacher, on-device and split weights: same seed, same weights, whatever
    else is trained beside them."""
    beta = TINY.betas[0]
    again = training.train(dataclasses.replace(TINY, betas=(beta,), per_task_betas=()))
    pairs = [
        (models.teacher, again.teacher),
        (models.split[(beta, None)], again.split[(beta, None)]),
    ]
    pairs += [(models.on_device[t], again.on_device[t]) for t in TASKS]
    for first, second in pairs:
        assert first.keys() == second.keys()
        for key in first:
            assert np.array_equal(first[key], second[key]), key


def test_inference_is_deterministic(pipes: Pipelines, models: TrainedModels) -> None:
    images = training.dataset(TINY, "validation").images
    other = Pipelines(models)
    assert pipes.split_encode(images, TINY.betas[1]) == other.split_encode(images, TINY.betas[1])
    a, b = pipes.teacher(images), other.teacher(images)
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.masks, b.masks)


def test_cache_hit_returns_the_same_models(models: TrainedModels, cache_dir: Path) -> None:
    path = training.cache_path(TINY)
    assert path.parent == cache_dir and path.exists()
    assert training.trained(TINY) is models  # in memory
    from_disk = training.load(path)
    assert from_disk is not None and from_disk.config == TINY
    for key, state in models.split.items():
        for name, value in state.items():
            assert np.array_equal(from_disk.split[key][name], value)
    assert training.cache_path(dataclasses.replace(TINY, seed=1)) != path


def test_bad_configs_are_refused() -> None:
    from netsim.errors import InputError

    with pytest.raises(InputError, match="image_size"):
        dataclasses.replace(TINY, image_size=20)
    with pytest.raises(InputError, match="per_task_betas"):
        dataclasses.replace(TINY, per_task_betas=(0.5,))


# ---------------------------------------------------------------- FLOPs
def test_flops_order_the_modes(pipes: Pipelines) -> None:
    """By design: the split encoder is lighter than the three on-device models
    together, which are far lighter than the teacher; the server side of the
    split model is lighter than the teacher (no stem) and a single-task
    server lighter than the shared one (one head)."""
    flops = pipes.flops
    beta = TINY.per_task_betas[0]
    device = flops.split_device(beta)
    assert 0 < device < flops.local < flops.teacher / 4
    assert 0 < flops.split_server(beta) < flops.teacher
    assert all(0 < flops.local_per_task[t] < flops.local for t in TASKS)
    for task in TASKS:
        assert flops.split_device(beta, task) == device
        assert flops.split_server(beta, task) < flops.split_server(beta)
    assert flops.coding_per_symbol > 0 and pipes.latent_symbols(beta) == np.prod(pipes.latent_shape)
