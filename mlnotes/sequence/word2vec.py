"""Word2vec: skip-gram and CBOW with negative sampling (SGNS), in PyTorch.

Implements the two models of Mikolov et al., "Efficient Estimation of Word
Representations in Vector Space" (ICLR workshop 2013), trained with the negative
sampling, frequent-word subsampling and unigram^0.75 noise distribution of Mikolov
et al., "Distributed Representations of Words and Phrases and their
Compositionality" (NeurIPS 2013), with the conventions of the authors' C code as
gensim reproduces them (vocabulary sorted by frequency, the C code's subsampling
formula, shrinking windows, linearly decaying learning rate, uniform input and zero
output initialisation). Levy and Goldberg, "Neural Word Embedding as Implicit Matrix
Factorization" (NeurIPS 2014), show what SGNS computes: a factorisation of the
PMI matrix shifted by ``log k``, whose counts and PMI :func:`cooccurrence_pmi` gives.

Training is mini-batch SGD with hand-written gradients: every step takes many
(input, target, negatives) rows at once, so the work is a few gathers, elementwise
products and two ``index_add_`` scatters, on any device and dtype.

The chapter is ``book/sequence/word2vec.ipynb``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "Vocabulary",
    "build_vocabulary",
    "keep_probabilities",
    "noise_distribution",
    "alias_table",
    "sample_negatives",
    "skipgram_pairs",
    "cbow_windows",
    "negative_sampling_loss",
    "skipgram_step",
    "cbow_step",
    "Word2VecConfig",
    "Word2Vec",
    "train_word2vec",
    "cooccurrence_pmi",
    "neighbour_purity",
    "analogy_accuracy",
    "neighbour_rank",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- vocabulary, subsampling, noise
def _check_sentences(sentences: object) -> list[list[str]]:
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
        raise TypeError(f"sentences must be a list of sentences (lists of str tokens), got {type(sentences).__name__}")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("sentences must not be empty")
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(f"sentences[{i}] must be a list of str tokens, got {type(sentence).__name__}")
        if sentence and not all(isinstance(word, str) for word in sentence):
            raise TypeError(f"sentences[{i}] must hold str tokens only")
    return sentences  # type: ignore[return-value]  # checked above


@dataclass(frozen=True, repr=False)
class Vocabulary:
    """Words kept for training, most frequent first.

    Attributes
    ----------
    words : list of str
        The words; index ``i`` is word ``words[i]``. Sorted by decreasing count,
        ties in order of first appearance (as gensim sorts).
    counts : numpy.ndarray
        Shape ``(vocab_size,)``, int64: how often each word occurs in the corpus.
    index : dict of str to int
        Word to index.
    """

    words: list[str]
    counts: np.ndarray
    index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.words)} words, {int(self.counts.sum())} tokens)"

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Word indices of every sentence, out-of-vocabulary words dropped.

        Parameters
        ----------
        sentences : list of list of str

        Returns
        -------
        list of numpy.ndarray
            One int64 array per sentence.
        """
        index = self.index
        return [np.array([index[w] for w in s if w in index], dtype=np.int64) for s in sentences]


def build_vocabulary(sentences: Sequence[Sequence[str]], min_count: int = 5) -> Vocabulary:
    """Count the words and keep those seen at least `min_count` times.

    Parameters
    ----------
    sentences : list of list of str
        The corpus.
    min_count : int, default 5
        Words rarer than this are dropped (they are also skipped in training).

    Returns
    -------
    Vocabulary
        Sorted by decreasing count, ties in order of first appearance.

    Raises
    ------
    TypeError
        If `sentences` is not a list of lists of str.
    ValueError
        If `sentences` is empty, `min_count` < 1, or no word occurs `min_count` times.
    """
    sentences = _check_sentences(sentences)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
    counter = Counter(word for sentence in sentences for word in sentence)  # insertion order = first appearance
    kept = [(word, count) for word, count in counter.items() if count >= min_count]
    if not kept:
        raise ValueError(f"no word occurs min_count={min_count} times (the corpus has {len(counter)} distinct words)")
    kept.sort(key=lambda item: -item[1])  # stable: ties keep first-appearance order
    words = [word for word, _ in kept]
    return Vocabulary(words, np.array([c for _, c in kept], dtype=np.int64), {w: i for i, w in enumerate(words)})


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    r"""Probability of keeping each occurrence of a word under frequent-word subsampling.

    The formula of the word2vec C code and gensim, with ``f = count / total``:

    .. math:: p_\text{keep} = \min\Big(1,\ \sqrt{\tfrac{s}{f}} + \tfrac{s}{f}\Big)

    (The paper writes the discard probability as ``1 - sqrt(s / f)``; the code's
    version keeps a little more.)

    Parameters
    ----------
    counts : numpy.ndarray
        Shape ``(vocab_size,)``: word counts.
    sample : float
        The threshold ``s``, typically ``1e-3`` to ``1e-5``; ``0`` disables subsampling.

    Returns
    -------
    numpy.ndarray
        Shape ``(vocab_size,)``, in ``(0, 1]``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or np.any(counts <= 0):
        raise ValueError(f"counts must be a non-empty 1-D array of positive counts, got shape {counts.shape}")
    if not (isinstance(sample, (int, float)) and 0 <= sample < 1):
        raise ValueError(f"sample must be a float in [0, 1), got {sample!r}")
    if sample == 0:
        return np.ones_like(counts)
    ratio = sample * counts.sum() / counts  # s / f
    return np.minimum(1.0, np.sqrt(ratio) + ratio)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    r"""The negative-sampling noise distribution ``P_n(w) = count(w)^power / Z``.

    Parameters
    ----------
    counts : numpy.ndarray
        Shape ``(vocab_size,)``: word counts.
    power : float, default 0.75
        The exponent; 1 is the unigram distribution, 0 the uniform one.

    Returns
    -------
    numpy.ndarray
        Shape ``(vocab_size,)``, float64, summing to one.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or np.any(counts <= 0):
        raise ValueError(f"counts must be a non-empty 1-D array of positive counts, got shape {counts.shape}")
    weights = counts**power
    return weights / weights.sum()


def alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of a discrete distribution, for O(1) sampling.

    Column ``i`` of the table keeps word ``i`` with probability ``accept[i]`` and
    otherwise gives word ``alias[i]``; a draw picks a column uniformly. Every
    word's total probability, ``(accept[i] + sum_{j: alias[j] = i} (1 - accept[j])) / n``,
    equals ``probs[i]`` (Vose's construction). It plays the role of the C code's
    100-million-entry unigram table, exactly and in ``O(vocab_size)`` memory.

    Parameters
    ----------
    probs : numpy.ndarray
        Shape ``(n,)``: probabilities summing to one.

    Returns
    -------
    accept : numpy.ndarray
        Shape ``(n,)``, float64 in ``[0, 1]``.
    alias : numpy.ndarray
        Shape ``(n,)``, int64.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0 or np.any(probs < 0) or not math.isclose(probs.sum(), 1.0, rel_tol=1e-9):
        raise ValueError(f"probs must be a non-empty 1-D array of probabilities summing to 1, got shape {probs.shape}")
    n = probs.size
    scaled = probs * n
    accept = np.ones(n)
    alias = np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]  # the part of column s that goes to g
        (small if scaled[g] < 1.0 else large).append(g)
    return accept, alias  # leftovers (rounding) keep themselves with probability 1


def sample_negatives(
    accept: torch.Tensor, alias: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator
) -> torch.Tensor:
    """Draw noise words from an alias table (:func:`alias_table`).

    Parameters
    ----------
    accept : torch.Tensor
        Shape ``(vocab_size,)``, floating point.
    alias : torch.Tensor
        Shape ``(vocab_size,)``, int64; on the device of `accept`.
    shape : tuple of int
        Shape of the result, such as ``(batch, negative)``.
    generator : torch.Generator
        On the device of `accept`.

    Returns
    -------
    torch.Tensor
        int64 word indices of shape `shape`, on the device of `accept`.
    """
    n = int(np.prod(shape))
    column = torch.randint(0, accept.numel(), (n,), generator=generator, device=accept.device)
    coin = torch.rand(n, generator=generator, device=accept.device, dtype=accept.dtype)
    keep = coin < accept.index_select(0, column)
    return torch.where(keep, column, alias.index_select(0, column)).view(shape)


# --------------------------------------------------------------------------- training examples
def _windows(lengths: np.ndarray, window: int, rng: np.random.Generator, shrink: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sentence id of every token and its effective window (``window - b``, ``b ~ U{0..window-1}``)."""
    sentence = np.repeat(np.arange(len(lengths)), lengths)
    if shrink:
        effective = window - rng.integers(0, window, size=sentence.size)
    else:
        effective = np.full(sentence.size, window)
    return sentence, effective


def skipgram_pairs(
    sentences: Sequence[np.ndarray], window: int, rng: np.random.Generator, *, shrink: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """All (center, context) pairs of skip-gram, vectorised over the corpus.

    Word ``j`` is a context of center ``i`` when both are in one sentence and
    ``0 < |i - j| <= effective_window(i)``; the effective window is drawn per center
    uniformly from ``1..window`` (``shrink=True``, as the C code does, which weights
    near contexts more), or is `window`.

    Parameters
    ----------
    sentences : list of numpy.ndarray
        Word indices of each sentence (after subsampling).
    window : int
        Largest distance between center and context.
    rng : numpy.random.Generator
        Draws the effective windows.
    shrink : bool, default True
        Draw a random effective window per center.

    Returns
    -------
    centers, contexts : numpy.ndarray
        int64 arrays of shape ``(n_pairs,)``, grouped by distance (the trainer shuffles them).
    """
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    ids = np.concatenate(sentences) if len(sentences) else np.zeros(0, dtype=np.int64)
    sentence, effective = _windows(lengths, window, rng, shrink)
    centers, contexts = [], []
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]
        right = same & (effective[:-d] >= d)  # center on the left, context d to its right
        left = same & (effective[d:] >= d)  # center on the right, context d to its left
        centers += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    return np.concatenate(centers), np.concatenate(contexts)


def cbow_windows(
    sentences: Sequence[np.ndarray], window: int, rng: np.random.Generator, *, shrink: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Every center word with its context words, for CBOW.

    Parameters
    ----------
    sentences : list of numpy.ndarray
        Word indices of each sentence (after subsampling).
    window : int
        Largest distance between center and context.
    rng : numpy.random.Generator
        Draws the effective windows (as in :func:`skipgram_pairs`).
    shrink : bool, default True
        Draw a random effective window per center.

    Returns
    -------
    centers : numpy.ndarray
        Shape ``(n_centers,)``, int64; centers without any context are dropped.
    contexts : numpy.ndarray
        Shape ``(n_centers, 2 * window)``, int64: the context words left to right,
        ``-1`` where the window is shorter.
    """
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    ids = np.concatenate(sentences) if len(sentences) else np.zeros(0, dtype=np.int64)
    sentence, effective = _windows(lengths, window, rng, shrink)
    contexts = np.full((ids.size, 2 * window), -1, dtype=np.int64)
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]
        right = same & (effective[:-d] >= d)
        left = same & (effective[d:] >= d)
        contexts[:-d, window + d - 1][right] = ids[d:][right]
        contexts[d:, window - d][left] = ids[:-d][left]
    has_context = (contexts >= 0).any(axis=1)
    return ids[has_context], contexts[has_context]


# --------------------------------------------------------------------------- the objective and its SGD steps
def negative_sampling_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""The SGNS loss of every row: one positive target, then the negatives.

    .. math:: \ell = -\log\sigma(\mathbf{u}_{o}^\top \mathbf{h})
                     - \sum_{k=1}^{K} \log\sigma(-\mathbf{u}_{n_k}^\top \mathbf{h})

    Parameters
    ----------
    inputs : torch.Tensor
        Shape ``(batch, dim)``: the input vector ``h`` (a center word's vector in
        skip-gram, the mean of the context vectors in CBOW).
    targets : torch.Tensor
        Shape ``(batch, 1 + negative, dim)``: the output vectors of the true target
        ``u_o`` (first) and of the ``K`` noise words.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``. Differentiable; the training steps use the hand-written
        gradient of the same expression.
    """
    if inputs.ndim != 2 or targets.ndim != 3 or targets.shape[0] != inputs.shape[0] or targets.shape[2] != inputs.shape[1]:
        raise ValueError(
            f"inputs must have shape (batch, dim) and targets (batch, 1 + negative, dim), "
            f"got {tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    scores = torch.bmm(targets, inputs.unsqueeze(2)).squeeze(2)  # (batch, 1 + negative)
    return -F.logsigmoid(scores[:, 0]) - F.logsigmoid(-scores[:, 1:]).sum(dim=1)


def _sgns_update(
    inputs: torch.Tensor, output_vectors: torch.Tensor, targets: torch.Tensor, lr: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Update the output vectors of `targets` in place; return the loss and d loss / d inputs."""
    dim = inputs.shape[1]
    target_vectors = output_vectors.index_select(0, targets.reshape(-1)).view(*targets.shape, dim)
    scores = (target_vectors * inputs.unsqueeze(1)).sum(dim=2)  # (batch, 1 + negative): u . h
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    # d loss / d score = sigmoid(score) - label, for the positive and each negative alike.
    error = torch.sigmoid(scores) - labels
    loss = -F.logsigmoid(scores[:, 0]) - F.logsigmoid(-scores[:, 1:]).sum(dim=1)
    grad_inputs = torch.bmm(error.unsqueeze(1), target_vectors).squeeze(1)  # (batch, dim)
    grad_targets = error.unsqueeze(2) * inputs.unsqueeze(1)  # (batch, 1 + negative, dim)
    output_vectors.index_add_(0, targets.reshape(-1), grad_targets.reshape(-1, dim), alpha=-lr)
    return loss, grad_inputs


def skipgram_step(
    input_vectors: torch.Tensor, output_vectors: torch.Tensor, centers: torch.Tensor, targets: torch.Tensor, lr: float
) -> torch.Tensor:
    """One SGD step of skip-gram with negative sampling on a batch of rows, in place.

    Each row predicts a target word (a context of the center) against its noise
    words from the center's input vector. Gradients of rows that share a word are
    summed, as if the rows were processed one after another with a small step.

    Parameters
    ----------
    input_vectors : torch.Tensor
        Shape ``(vocab_size, dim)``: the word vectors ``v`` (updated in place).
    output_vectors : torch.Tensor
        Shape ``(vocab_size, dim)``: the context vectors ``u`` (updated in place).
    centers : torch.Tensor
        Shape ``(batch,)``, int64: the input word of each row.
    targets : torch.Tensor
        Shape ``(batch, 1 + negative)``, int64: the true target, then the negatives.
    lr : float
        Learning rate.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``: the loss of every row before the step.
    """
    inputs = input_vectors.index_select(0, centers)
    loss, grad_inputs = _sgns_update(inputs, output_vectors, targets, lr)
    input_vectors.index_add_(0, centers, grad_inputs, alpha=-lr)
    return loss


def cbow_step(
    input_vectors: torch.Tensor, output_vectors: torch.Tensor, contexts: torch.Tensor, targets: torch.Tensor, lr: float
) -> torch.Tensor:
    """One SGD step of CBOW with negative sampling on a batch of windows, in place.

    The input of a row is the mean of its context words' input vectors. As in the
    C code and gensim, every context word then receives the *whole* gradient with
    respect to that mean, not the ``1 / n_context`` share that the exact gradient
    would give it: the input vectors learn with a learning rate ``n_context`` times
    larger.

    Parameters
    ----------
    input_vectors : torch.Tensor
        Shape ``(vocab_size, dim)``, updated in place.
    output_vectors : torch.Tensor
        Shape ``(vocab_size, dim)``, updated in place.
    contexts : torch.Tensor
        Shape ``(batch, 2 * window)``, int64: context word indices, ``-1`` for none
        (every row has at least one).
    targets : torch.Tensor
        Shape ``(batch, 1 + negative)``, int64: the center word, then the negatives.
    lr : float
        Learning rate.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``: the loss of every row before the step.
    """
    present = contexts >= 0
    safe = contexts.clamp(min=0)
    weights = present.to(input_vectors.dtype) / present.sum(dim=1, keepdim=True).to(input_vectors.dtype)
    context_vectors = input_vectors.index_select(0, safe.reshape(-1)).view(*safe.shape, input_vectors.shape[1])
    inputs = (context_vectors * weights.unsqueeze(2)).sum(dim=1)  # mean of the context vectors
    loss, grad_inputs = _sgns_update(inputs, output_vectors, targets, lr)
    # The C code's update: the whole gradient of the mean for each present context word.
    grad_contexts = present.to(grad_inputs.dtype).unsqueeze(2) * grad_inputs.unsqueeze(1)  # (batch, 2 * window, dim)
    input_vectors.index_add_(0, safe.reshape(-1), grad_contexts.reshape(-1, input_vectors.shape[1]), alpha=-lr)
    return loss


# --------------------------------------------------------------------------- configuration and model
@dataclass
class Word2VecConfig:
    """Hyperparameters of :func:`train_word2vec` (defaults as in gensim where they exist).

    Attributes
    ----------
    vector_size : int, default 100
        Dimension of the word vectors.
    window : int, default 5
        Largest distance between a center word and a context word.
    shrink_windows : bool, default True
        Draw each center's window uniformly from ``1..window`` (the C code's default).
    negative : int, default 5
        Noise words per positive example (``K``).
    ns_exponent : float, default 0.75
        Power of the unigram counts in the noise distribution.
    sg : bool, default True
        Skip-gram if true, CBOW (mean of the context vectors) if false.
    epochs : int, default 5
        Passes over the corpus.
    lr : float, default 0.025
        Initial learning rate; it decays linearly to `min_lr` over training.
    min_lr : float, default 1e-4
        Final learning rate.
    min_count : int, default 5
        Words rarer than this are dropped from the vocabulary and the corpus.
    sample : float, default 1e-3
        Subsampling threshold for frequent words (:func:`keep_probabilities`); 0 turns it off.
    batch_size : int, default 256
        Rows (pairs in skip-gram, windows in CBOW) per SGD step.
    """

    vector_size: int = 100
    window: int = 5
    shrink_windows: bool = True
    negative: int = 5
    ns_exponent: float = 0.75
    sg: bool = True
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 1e-4
    min_count: int = 5
    sample: float = 1e-3
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("vector_size", "window", "negative", "epochs", "min_count", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("lr", "min_lr", "ns_exponent", "sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
        if not self.lr > 0 or self.min_lr > self.lr:
            raise ValueError(f"lr must be > 0 and >= min_lr, got lr={self.lr}, min_lr={self.min_lr}")
        if self.sample >= 1:
            raise ValueError(f"sample must be in [0, 1), got {self.sample}")


@dataclass
class Word2Vec:
    """Trained word vectors, with gensim-``KeyedVectors``-style queries.

    Attributes
    ----------
    vocabulary : Vocabulary
        The words, most frequent first.
    input_vectors : torch.Tensor
        Shape ``(vocab_size, vector_size)``: the word vectors (gensim's ``wv.vectors``).
    output_vectors : torch.Tensor
        Shape ``(vocab_size, vector_size)``: the context vectors (gensim's ``syn1neg``).
    config : Word2VecConfig
        The configuration it was trained with.
    epoch_loss : list of float
        Mean SGNS loss per row in each epoch (:func:`negative_sampling_loss`).
    words_trained : int
        Corpus tokens in the vocabulary, times the epochs (before subsampling; gensim's
        "raw words" count out-of-vocabulary tokens too).
    seconds : float
        Wall-clock training time.
    """

    vocabulary: Vocabulary
    input_vectors: torch.Tensor
    output_vectors: torch.Tensor
    config: Word2VecConfig
    epoch_loss: list[float] = field(default_factory=list)
    words_trained: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        vectors = self.input_vectors.detach().to("cpu", torch.float64).numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._unit = vectors / np.maximum(norms, 1e-12)

    def __repr__(self) -> str:
        kind = "skip-gram" if self.config.sg else "CBOW"
        return f"Word2Vec({kind}, {len(self.vocabulary)} words, dim {self.config.vector_size})"

    def __contains__(self, word: object) -> bool:
        return word in self.vocabulary

    @property
    def words(self) -> list[str]:
        """The vocabulary's words, index order (gensim's ``index_to_key``)."""
        return self.vocabulary.words

    @property
    def words_per_second(self) -> float:
        """Training throughput: ``words_trained`` per second of ``seconds``."""
        return self.words_trained / self.seconds if self.seconds > 0 else float("nan")

    def _index(self, word: str) -> int:
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        try:
            return self.vocabulary.index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self.vocabulary)} words)") from None

    def vector(self, word: str) -> np.ndarray:
        """The word's input vector, float64 array of shape ``(vector_size,)``."""
        return self.input_vectors[self._index(word)].detach().to("cpu", torch.float64).numpy().copy()

    def unit_vectors(self) -> np.ndarray:
        """All word vectors scaled to unit length, shape ``(vocab_size, vector_size)``, float64."""
        return self._unit

    def similarity(self, word_a: str, word_b: str) -> float:
        """Cosine similarity of two words' vectors."""
        return float(self._unit[self._index(word_a)] @ self._unit[self._index(word_b)])

    def most_similar(
        self,
        word: str | None = None,
        topn: int = 10,
        *,
        positive: Sequence[str] = (),
        negative: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """The `topn` words closest in cosine similarity to a word or to a vector sum.

        ``most_similar("attacks")`` ranks the neighbours of one word;
        ``most_similar(positive=["king", "woman"], negative=["man"])`` answers the
        analogy "man is to king as woman is to ?" with the mean of the unit vectors
        (``+`` for `positive`, ``-`` for `negative`), as gensim does. The query words
        themselves are never returned.

        Parameters
        ----------
        word : str, optional
            A single query word (the same as ``positive=[word]``).
        topn : int, default 10
            How many neighbours to return; at most the vocabulary size minus the query words.
        positive, negative : sequence of str
            Words added to and subtracted from the query.

        Returns
        -------
        list of (str, float)
            Words and cosine similarities, most similar first.

        Raises
        ------
        KeyError
            If a query word is not in the vocabulary.
        ValueError
            If there is no query word, or `topn` < 1.
        """
        if isinstance(positive, str) or isinstance(negative, str):
            raise TypeError("positive and negative must be lists of words, not a single str")
        positive = ([word] if word is not None else []) + list(positive)
        negative = list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs a word, or words in positive/negative")
        if isinstance(topn, bool) or not isinstance(topn, int) or topn < 1:
            raise ValueError(f"topn must be an int >= 1, got {topn!r}")
        query_ids = [self._index(w) for w in positive] + [self._index(w) for w in negative]
        signs = np.array([1.0] * len(positive) + [-1.0] * len(negative))
        query = (signs[:, None] * self._unit[query_ids]).mean(axis=0)
        query /= max(np.linalg.norm(query), 1e-12)
        scores = self._unit @ query
        scores[query_ids] = -np.inf
        topn = min(topn, len(scores) - len(set(query_ids)))
        best = np.argsort(-scores, kind="stable")[:topn]
        return [(self.vocabulary.words[i], float(scores[i])) for i in best]


# --------------------------------------------------------------------------- training
def _as_torch_generator(generator: int | torch.Generator, device: torch.device) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        if generator.device.type != device.type:
            raise ValueError(f"generator lives on {generator.device}, but training runs on {device}")
        return generator
    if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)) or generator < 0:
        raise TypeError(f"generator must be a torch.Generator or a non-negative int seed, got {generator!r}")
    return torch.Generator(device=device).manual_seed(int(generator))


def train_word2vec(
    sentences: Sequence[Sequence[str]],
    config: Word2VecConfig | None = None,
    *,
    generator: int | torch.Generator,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Word2Vec:
    """Train skip-gram or CBOW with negative sampling on a tokenised corpus.

    Each epoch subsamples the corpus afresh (:func:`keep_probabilities`), builds all
    training rows at once (:func:`skipgram_pairs` or :func:`cbow_windows`), shuffles
    them, and runs :func:`skipgram_step` / :func:`cbow_step` on batches of
    ``config.batch_size`` rows with fresh negatives from the unigram^0.75 noise
    distribution. The learning rate decays linearly from ``lr`` to ``min_lr`` over
    all steps. Input vectors start uniform in ``[-0.5 / dim, 0.5 / dim)``, output
    vectors at zero, as in the C code.

    Parameters
    ----------
    sentences : list of list of str
        The tokenised corpus.
    config : Word2VecConfig, optional
        Hyperparameters; default ``Word2VecConfig()``.
    generator : int or torch.Generator
        Seed, or a generator on `device`: all randomness (initialisation,
        subsampling, windows, shuffling, negatives) derives from it.
    device : str or torch.device, optional
        Where to train; default the generator's device, else the CPU.
    dtype : torch.dtype, default torch.float32
        Floating-point type of the vectors.

    Returns
    -------
    Word2Vec

    Raises
    ------
    TypeError
        If `sentences` is not a list of lists of str, `config` not a
        :class:`Word2VecConfig`, `generator` neither a seed nor a generator, or
        `dtype` not floating point.
    ValueError
        If the corpus is empty or has no word occurring ``min_count`` times.
    """
    if config is None:
        config = Word2VecConfig()
    if not isinstance(config, Word2VecConfig):
        raise TypeError(f"config must be a Word2VecConfig, got {type(config).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if device is None:
        device = generator.device if isinstance(generator, torch.Generator) else torch.device("cpu")
    device = torch.device(device)
    torch_generator = _as_torch_generator(generator, device)
    vocabulary = build_vocabulary(sentences, config.min_count)
    encoded = [s for s in vocabulary.encode(sentences) if s.size > 0]
    n_words = sum(s.size for s in encoded)
    # NumPy draws the subsampling, windows and shuffles; its seed comes from the torch generator.
    seed = int(torch.randint(0, 2**62, (1,), generator=torch_generator, device=device).item())
    rng = np.random.default_rng(seed)

    vocab_size, dim = len(vocabulary), config.vector_size
    init = torch.rand((vocab_size, dim), generator=torch_generator, device=device, dtype=torch.float32)
    input_vectors = ((init - 0.5) / dim).to(dtype)
    output_vectors = torch.zeros((vocab_size, dim), device=device, dtype=dtype)
    keep = keep_probabilities(vocabulary.counts, config.sample)
    accept, alias = alias_table(noise_distribution(vocabulary.counts, config.ns_exponent))
    accept, alias = torch.as_tensor(accept, device=device), torch.as_tensor(alias, device=device)

    epoch_loss = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        kept = [s[rng.random(s.size) < keep[s]] for s in encoded]
        if config.sg:
            centers, contexts = skipgram_pairs(kept, config.window, rng, shrink=config.shrink_windows)
            inputs_np, positives_np = centers, contexts
        else:
            centers, contexts = cbow_windows(kept, config.window, rng, shrink=config.shrink_windows)
            inputs_np, positives_np = contexts, centers
        order = rng.permutation(positives_np.size)
        inputs = torch.as_tensor(inputs_np[order], device=device)
        positives = torch.as_tensor(positives_np[order], device=device)
        n_rows = positives.numel()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for begin in range(0, n_rows, config.batch_size):
            end = min(begin + config.batch_size, n_rows)
            progress = (epoch + begin / max(n_rows, 1)) / config.epochs
            lr = max(config.min_lr, config.lr * (1.0 - progress))
            negatives = sample_negatives(accept, alias, (end - begin, config.negative), torch_generator)
            targets = torch.cat([positives[begin:end, None], negatives], dim=1)
            if config.sg:
                loss = skipgram_step(input_vectors, output_vectors, inputs[begin:end], targets, lr)
            else:
                loss = cbow_step(input_vectors, output_vectors, inputs[begin:end], targets, lr)
            total += loss.sum(dtype=torch.float64)
        epoch_loss.append(float(total) / max(n_rows, 1))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return Word2Vec(vocabulary, input_vectors, output_vectors, config, epoch_loss, n_words * config.epochs, seconds)


# --------------------------------------------------------------------------- what SGNS factorises, and evaluation
def cooccurrence_pmi(
    sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, window: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Word-context co-occurrence counts and their pointwise mutual information.

    Counts every ordered pair ``(w, c)`` with ``0 < |i - j| <= window`` in a
    sentence, weighted by ``(window - |i - j| + 1) / window``: the probability that
    a shrinking window (:func:`skipgram_pairs`) contains the pair, so that the
    counts are the expected pair counts of skip-gram without subsampling. Then

    .. math:: \operatorname{PMI}(w, c) = \log \frac{\#(w, c)\, \#(\cdot, \cdot)}{\#(w, \cdot)\, \#(\cdot, c)} .

    Parameters
    ----------
    sentences : list of list of str
        The corpus.
    vocabulary : Vocabulary
        Words outside it are dropped first.
    window : int
        Largest distance.

    Returns
    -------
    counts : numpy.ndarray
        Shape ``(vocab_size, vocab_size)``, float64, symmetric.
    pmi : numpy.ndarray
        Same shape; ``-inf`` where the count is zero.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    encoded = vocabulary.encode(_check_sentences(sentences))
    n = len(vocabulary)
    counts = np.zeros((n, n))
    for d in range(1, window + 1):
        weight = (window - d + 1) / window
        for s in encoded:
            if s.size > d:
                np.add.at(counts, (s[:-d], s[d:]), weight)
    counts = counts + counts.T
    with np.errstate(divide="ignore"):
        pmi = np.log(counts) + np.log(counts.sum()) - np.log(counts.sum(1, keepdims=True)) - np.log(counts.sum(0, keepdims=True))
    return counts, pmi


def _labelled(model: Word2Vec, word_class: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    if not isinstance(model, Word2Vec):
        raise TypeError(f"model must be a trained Word2Vec, got {type(model).__name__}")
    words = [w for w in word_class if w in model]
    if len(words) < 2:
        raise ValueError(f"word_class must label at least 2 words of the vocabulary, got {len(words)}")
    return words, np.array([model.vocabulary.index[w] for w in words])


def neighbour_purity(model: Word2Vec, word_class: Mapping[str, str], k: int = 5) -> float:
    """Fraction of each labelled word's `k` nearest labelled words that share its class.

    Neighbours are by cosine similarity among the labelled words in the vocabulary
    (the word itself excluded); the result is the mean over those words. Chance
    level is about ``1 / n_classes`` for balanced classes.

    Parameters
    ----------
    model : Word2Vec
    word_class : mapping of str to str
        Ground-truth class of each word (words outside the vocabulary are ignored).
    k : int, default 5
        Neighbours per word.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    words, ids = _labelled(model, word_class)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < len(words):
        raise ValueError(f"k must be an int in [1, {len(words) - 1}], got {k!r}")
    unit = model.unit_vectors()[ids]
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    labels = np.array([word_class[w] for w in words])
    return float((labels[nearest] == labels[:, None]).mean())


def analogy_accuracy(model: Word2Vec, analogies: Sequence[tuple[str, str, str, str]]) -> float:
    """Fraction of quadruples ``(a, b, c, d)`` for which ``a - b + c`` is nearest to ``d``.

    Uses ``most_similar(positive=[a, c], negative=[b], topn=1)`` (the three query
    words excluded), the rule of Mikolov et al. and gensim.

    Parameters
    ----------
    model : Word2Vec
    analogies : sequence of (str, str, str, str)

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    if not isinstance(model, Word2Vec):
        raise TypeError(f"model must be a trained Word2Vec, got {type(model).__name__}")
    if len(analogies) == 0:
        raise ValueError("analogies must not be empty")
    hits = [model.most_similar(positive=[a, c], negative=[b], topn=1)[0][0] == d for a, b, c, d in analogies]
    return float(np.mean(hits))


def neighbour_rank(model: object, query: str, target: str) -> int:
    """Rank of `target` among the words most similar to `query` (0 = nearest).

    Works for this module's :class:`Word2Vec` and for gensim's ``Word2Vec`` /
    ``KeyedVectors`` alike (anything with ``most_similar(word, topn=...)`` and, for
    gensim, a ``wv`` attribute), so both are checked the same way.

    Parameters
    ----------
    model : Word2Vec or gensim model
    query, target : str

    Returns
    -------
    int
    """
    vectors = getattr(model, "wv", model)
    n = len(vectors.words) if isinstance(vectors, Word2Vec) else len(vectors.index_to_key)
    ranked = [w for w, _ in vectors.most_similar(query, topn=n - 1)]
    if target not in ranked:
        raise KeyError(f"target {target!r} is not in the vocabulary")
    return ranked.index(target)


# --------------------------------------------------------------------------- exercises


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: keep probability of a frequent word.

    A word makes up 1% of a corpus (``f = 0.01``), and ``sample = 1e-3``. With the
    C code's formula, what fraction of its occurrences is kept?
    """
    expected = float(keep_probabilities(np.array([1.0, 99.0]), 1e-3)[0])
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        f"Correct: sqrt(0.1) + 0.1 = {expected:.4f}; about two occurrences in three are dropped.",
        "Not yet: with r = sample / f, the keep probability is min(1, sqrt(r) + r).",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: the noise distribution.

    Three words occur 16, 1 and 1 times. What is the probability that a negative
    sample is the first word, with the unigram^0.75 distribution?
    """
    expected = float(noise_distribution(np.array([16.0, 1.0, 1.0]))[0])
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        f"Correct: 16^0.75 = 8, so 8 / (8 + 1 + 1) = {expected:.1f} (against 16/18 = 0.89 for the raw unigram).",
        "Not yet: raise each count to the power 0.75, then normalise.",
    )


def check_exercise_3(answer: int) -> bool:
    """Exercise 3: counting skip-gram pairs.

    A sentence has 10 words, the window is 2 and does not shrink. How many
    (center, context) pairs does skip-gram train on?
    """
    centers, _ = skipgram_pairs([np.arange(10)], 2, np.random.default_rng(0), shrink=False)
    value = _as_float(answer)
    return _report(
        value is not None and value == centers.size,
        f"Correct: 2 * (9 + 8) = {centers.size}: every pair at distance 1 or 2, in both directions.",
        "Not yet: count the pairs at distance d (10 - d of them) for d = 1, 2, and both directions.",
    )
