"""Tests of mlnotes.datasets.planted_corpus: the ground truth is what the sentences say it is."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlnotes.datasets import PlantedCorpus, planted_corpus


def test_shapes_and_determinism() -> None:
    a = planted_corpus(300, rng=3)
    b = planted_corpus(300, rng=np.random.default_rng(3))
    assert isinstance(a, PlantedCorpus) and len(a) == 300 and a.sentences == b.sentences
    assert a.sentences != planted_corpus(300, rng=4).sentences
    assert all(10 <= len(s) <= 20 for s in a.sentences)
    assert "300 sentences" in repr(a) and a.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.description = "other"  # type: ignore[misc]


def test_vocabulary_and_ground_truth() -> None:
    corpus = planted_corpus(2000, n_classes=4, words_per_class=6, n_attributes=3, markers_per_attribute=2, n_filler=5, rng=0)
    words = set(Counter(w for s in corpus.sentences for w in s))
    class_words = {w for w in corpus.word_class if "_" not in w}
    pair_words = {w for w in corpus.word_class if "_" in w}
    assert len(class_words) == 4 * 6 and len(pair_words) == 4 * 3
    assert words == class_words | pair_words | {f"{t}{i}" for t in corpus.attribute_names for i in range(2)} | {f"the{i}" for i in range(5)}
    assert corpus.class_names == ("animal", "city", "colour", "food") and corpus.attribute_names == ("x", "y", "z")
    # every analogy a - b + c = d: a, d share the class, b, c share the class, a, b share the attribute, c, d too
    assert len(corpus.analogies) == 4 * 3 * 3 * 2
    for a, b, c, d in corpus.analogies:
        wc, wa = corpus.word_class, corpus.word_attribute
        assert wc[a] == wc[d] != wc[b] == wc[c] and wa[a] == wa[b] != wa[c] == wa[d]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_each_sentence_has_one_class_and_one_attribute(seed: int) -> None:
    corpus = planted_corpus(50, rng=seed)
    for sentence in corpus.sentences:
        classes = {corpus.word_class[w] for w in sentence if w in corpus.word_class}
        attributes = {corpus.word_attribute[w] for w in sentence if w in corpus.word_attribute}
        assert len(classes) <= 1 and len(attributes) <= 1


def test_token_mixture_proportions() -> None:
    corpus = planted_corpus(3000, filler_share=0.4, rng=1)
    tokens = [w for s in corpus.sentences for w in s]
    share = Counter("filler" if w.startswith("the") else "pair" if "_" in w else "class" if w in corpus.word_class else "marker" for w in tokens)
    n = len(tokens)
    expected = {"filler": 0.4, "class": 0.3, "marker": 0.18, "pair": 0.12}
    for kind, p in expected.items():
        assert abs(share[kind] / n - p) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_sentences": 0}, ValueError, "n_sentences"),
        ({"n_classes": 1}, ValueError, "n_classes"),
        ({"n_classes": 17}, ValueError, "n_classes"),
        ({"n_attributes": 5}, ValueError, "n_attributes"),
        ({"sentence_length": (1, 5)}, ValueError, "sentence_length"),
        ({"filler_share": 1.0}, ValueError, "filler_share"),
        ({"words_per_class": 2.5}, TypeError, "words_per_class"),
    ],
)
def test_bad_input(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        planted_corpus(**{"n_sentences": 10, "rng": 0, **kwargs})
    with pytest.raises(TypeError, match="rng"):
        planted_corpus(10, rng=None)  # type: ignore[arg-type]
