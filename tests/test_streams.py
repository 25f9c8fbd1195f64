"""Many streams at once are exactly the streams of ``rng.generator``."""

import numpy as np
import pytest

from netsim import rng, streams
from netsim.streams import DeviceGenerators, Streams, pcg64_state, pcg64_state_words, seed_words


@pytest.mark.parametrize("seed", [0, 7, 2**32 + 5, 2**70 + 3])
def test_seed_words_are_seed_sequences(seed: int) -> None:
    index = np.array([0, 1, 2, 1000, 2**31, 2**32 - 1])
    want = [rng.seed_sequence(seed, "lms-data", int(i)).generate_state(4, np.uint64) for i in index]
    assert np.array_equal(seed_words(seed, "lms-data", index), np.array(want))


def test_streams_draw_as_their_generators() -> None:
    index = np.array([3, 0, 17, 4096])
    mine = Streams(11, "consensus-init", index)
    theirs = [rng.generator(11, "consensus-init", int(i)) for i in index]
    got = np.empty((len(index), 5))

    def draw(i: int, g: np.random.Generator) -> None:
        g.standard_normal(out=got[i])

    for _ in range(3):  # each stream goes on where it was left
        mine.draw(draw)
        assert np.array_equal(got, np.array([g.standard_normal(5) for g in theirs]))
    again = [g.random(2) for g in mine.iter()]
    assert np.array_equal(again, [g.random(2) for g in theirs])


def test_device_generators_are_made_on_first_use() -> None:
    gens = DeviceGenerators(5, "device", np.array([4, 9]))
    assert len(gens) == 2 and not gens._made
    assert gens[1].random() == rng.generator(5, "device", 9).random()
    assert gens[1] is gens[-1] and list(gens._made) == [1]
    assert next(g.random() for g in gens) == rng.generator(5, "device", 4).random()
    with pytest.raises(IndexError):
        gens[2]


def test_seeded_states_vectorized() -> None:
    words = np.random.default_rng(1).integers(0, 2**64, (50, 4), dtype=np.uint64)
    words[0] = 2**64 - 1  # every carry
    got = pcg64_state_words(words)
    for w, row in zip(words.tolist(), got.tolist(), strict=True):
        state, inc = pcg64_state(tuple(w))
        assert row == [state >> 64, state & (2**64 - 1), inc >> 64, inc & (2**64 - 1)]


@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "through-state-dicts"])
def test_streams_keep_the_half_word_of_32_bit_draws(
    in_place: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small ``integers`` draws 32 bits and keeps the other half of the word
    for the next one: a stream taken up again goes on with that half."""
    if not in_place:
        monkeypatch.setattr(streams, "_live_views", lambda bits: None)
    index = np.array([5, 2, 9])
    mine = Streams(3, "gossip-clock", index)
    theirs = [rng.generator(3, "gossip-clock", int(i)) for i in index]
    got: list[list[float]] = [[] for _ in index]

    def draw(i: int, g: np.random.Generator) -> None:
        got[i] += [g.exponential(0.5), float(g.integers(4 + i))]

    assert (mine._live is not None) == in_place
    for _ in range(3):
        mine.draw(draw, np.array([2, 0]))  # some streams only, in any order
        mine.draw(draw, np.array([1]))
    want = [
        [v for _ in range(3) for v in (g.exponential(0.5), float(g.integers(4 + i)))]
        for i, g in enumerate(theirs)
    ]
    assert got == want
    assert [g.random() for g in mine.iter()] == [g.random() for g in theirs]
