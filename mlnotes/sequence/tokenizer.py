"""Byte-level byte pair encoding (BPE), the tokenizer of GPT-2 and its successors.

Byte pair encoding began as a compression algorithm (Gage 1994) and became a
subword tokenizer for translation in Sennrich, Haddow and Birch, "Neural Machine
Translation of Rare Words with Subword Units" (ACL 2016). GPT-2 (Radford et al.,
"Language Models are Unsupervised Multitask Learners", 2019) runs it on UTF-8
*bytes*, so that every string has an encoding and no token is unknown, and splits
the text with a regular expression first, so that merges never cross the boundary
between a word, a number, punctuation and white space.

:class:`BPETokenizer` trains with *incremental* pair counts: after each merge only
the chunks that contain the merged pair are recounted. :func:`train_naive` is the
textbook trainer that recounts every pair after every merge; both learn the same
merges, and the tests and ``benchmarks/tokenizer.py`` compare them with each other
and with Hugging Face ``tokenizers``. The chapter is ``book/sequence/tokenizer.ipynb``.
"""

from __future__ import annotations

import heapq
import json
import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex

from mlnotes.exercises import report as _report

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "BPETokenizer",
    "TrainingStats",
    "bytes_to_unicode",
    "pretokenize",
    "train_naive",
    "bytes_per_token",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]

#: GPT-2's pre-tokenisation pattern (``encoder.py`` of the GPT-2 release): English
#: contractions, letters with at most one leading space, digits likewise, other
#: symbols likewise, and white space (a run of spaces before a word leaves its last
#: space to the word).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

#: The pattern of GPT-4's ``cl100k_base`` encoding: case-insensitive contractions,
#: a word may take one leading non-letter (not only a space), numbers are split into
#: groups of at most three digits, and line breaks are kept apart from other white space.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)

_FORMAT = "mlnotes-bpe"
_FORMAT_VERSION = 1
_N_BYTES = 256


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to 256 printable Unicode characters.

    Bytes that are printable Latin-1 characters (``!`` to ``~``, ``¡`` to ``¬``,
    ``®`` to ``ÿ``; 188 of them) map to themselves; the other 68 (control bytes,
    the space, ``0x7f`` to ``0xa0`` and the soft hyphen) map to ``chr(256 + k)`` in
    byte order, so that the space becomes ``Ġ``. GPT-2's vocabulary files and Hugging
    Face ``tokenizers`` spell byte-level tokens with these characters.

    Returns
    -------
    dict of int to str
        Byte value to character, in GPT-2's order: the 188 printable bytes first.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(_N_BYTES):
        if b not in table:
            table[b] = chr(_N_BYTES + extra)
            extra += 1
    return table


# Tie-breaking rank of the byte tokens: their position in GPT-2's table (which is
# also their id in GPT-2's own vocabulary and in Hugging Face's byte-level trainer).
_BYTE_RANK = {b: rank for rank, b in enumerate(bytes_to_unicode())}


def _tie_rank(token: int) -> int:
    return _BYTE_RANK[token] if token < _N_BYTES else token


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _check_pattern(pattern: object) -> regex.Pattern:
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a regular expression as a str, got {_describe(pattern)}")
    try:
        return regex.compile(pattern)
    except regex.error as err:
        raise ValueError(f"pattern must be a valid regular expression, got {pattern!r} ({err})") from err


def _utf8(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{name} must be valid Unicode text, but it holds a lone surrogate at index {err.start} "
            f"({text[err.start]!r}), which has no UTF-8 encoding"
        ) from err


def _split(compiled: regex.Pattern, text: str) -> list[str]:
    """The pattern's matches in order; text it leaves unmatched becomes chunks too, so nothing is lost."""
    chunks, end = [], 0
    for match in compiled.finditer(text):
        start, stop = match.span()
        if start > end:
            chunks.append(text[end:start])
        if stop > start:
            chunks.append(text[start:stop])
        end = max(end, stop)
    if end < len(text):
        chunks.append(text[end:])
    return chunks


def pretokenize(text: str, pattern: str = GPT2_SPLIT_PATTERN) -> list[str]:
    """Split `text` into the chunks that BPE merges within (pre-tokenisation).

    Parameters
    ----------
    text : str
        The text.
    pattern : str, default :data:`GPT2_SPLIT_PATTERN`
        A regular expression for the ``regex`` module (it needs ``\\p{L}`` classes).

    Returns
    -------
    list of str
        The chunks; joined, they give back `text` exactly. Text that the pattern
        leaves unmatched becomes chunks of its own.

    Raises
    ------
    TypeError
        If `text` or `pattern` is not a str.
    ValueError
        If `pattern` is not a valid regular expression.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {_describe(text)}")
    return _split(_check_pattern(pattern), text)


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, scanning left to right, by `new_id`."""
    first, second = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == first and ids[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@dataclass(frozen=True)
class TrainingStats:
    """What a training run cost, in a machine-independent unit.

    Attributes
    ----------
    n_chunks : int
        Distinct pre-tokenised chunks (each counted once, with its frequency).
    n_chunk_bytes : int
        Total length in bytes of the distinct chunks.
    pair_visits : int
        Adjacent pairs the trainer looked at: every pair of every chunk per merge for
        :func:`train_naive`; only those of the chunks a merge touched (before and
        after merging) for :meth:`BPETokenizer.train`.
    """

    n_chunks: int
    n_chunk_bytes: int
    pair_visits: int


def _chunk_counts(text: str | Iterable[str], compiled: regex.Pattern) -> tuple[list[list[int]], list[int]]:
    """Distinct chunks as byte-id lists, and how often each occurs."""
    if isinstance(text, str):
        texts: Iterable[str] = [text]
    elif isinstance(text, Iterable) and not isinstance(text, (bytes, bytearray)):
        texts = text
    else:
        raise TypeError(f"text must be a str or an iterable of str, got {_describe(text)}")
    counts: Counter[str] = Counter()
    for k, piece in enumerate(texts):
        if not isinstance(piece, str):
            raise TypeError(f"text must be a str or an iterable of str, but item {k} is {_describe(piece)}")
        counts.update(_split(compiled, piece))
    chunks = [list(_utf8(chunk, "text")) for chunk in counts]
    return chunks, list(counts.values())


def _check_vocab_size(vocab_size: object) -> int:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {_describe(vocab_size)}")
    if vocab_size < _N_BYTES:
        raise ValueError(f"vocab_size must be at least {_N_BYTES} (one token per byte value), got {vocab_size}")
    return vocab_size


class BPETokenizer:
    """A byte-level BPE tokenizer with regex pre-tokenisation, as in GPT-2.

    Token ids ``0..255`` are the byte values; the ``i``-th learned merge creates id
    ``256 + i``; special tokens come after the merges. An untrained tokenizer encodes
    every string as its UTF-8 bytes.

    Parameters
    ----------
    pattern : str, default :data:`GPT2_SPLIT_PATTERN`
        The pre-tokenisation regular expression (:data:`GPT4_SPLIT_PATTERN` is
        GPT-4's). Merges never cross the boundary between two of its matches.
    special_tokens : sequence of str, optional
        Strings such as ``"<|endoftext|>"`` that get one id each, after the learned
        vocabulary, and that :meth:`encode` never splits.

    Attributes
    ----------
    pattern : str
        The pre-tokenisation pattern.
    vocab : dict of int to bytes
        Token id to the bytes it stands for (bytes, merged tokens, special tokens).
    special_tokens : dict of str to int
        Special token to its id.
    merges : list of (int, int)
        The learned merges in order; merge ``i`` joins the pair into id ``256 + i``.
    merge_counts : list of int
        How often each merged pair occurred in the training text when it was chosen
        (empty when the tokenizer was built from merges alone).
    stats : TrainingStats or None
        The cost of the last training run.
    """

    def __init__(self, pattern: str = GPT2_SPLIT_PATTERN, special_tokens: Sequence[str] | None = None) -> None:
        self._compiled = _check_pattern(pattern)
        self.pattern = pattern
        specials = [] if special_tokens is None else special_tokens
        if isinstance(specials, str) or not isinstance(specials, Sequence):
            raise TypeError(f"special_tokens must be a sequence of str, got {_describe(special_tokens)}")
        for token in specials:
            if not isinstance(token, str) or not token:
                raise ValueError(f"special_tokens must hold non-empty strings, got {token!r}")
            _utf8(token, "special_tokens")
        if len(set(specials)) != len(specials):
            raise ValueError(f"special_tokens must not repeat a string, got {list(specials)!r}")
        self._special_list = list(specials)
        self._set_merges([], [])
        self.stats: TrainingStats | None = None

    # ------------------------------------------------------------------ state
    def _set_merges(self, merges: list[tuple[int, int]], counts: list[int]) -> None:
        self.merges = [(int(a), int(b)) for a, b in merges]
        self.merge_counts = [int(c) for c in counts]
        self._ranks = {pair: _N_BYTES + i for i, pair in enumerate(self.merges)}
        vocab = {i: bytes([i]) for i in range(_N_BYTES)}
        for new_id, (a, b) in enumerate(self.merges, start=_N_BYTES):
            vocab[new_id] = vocab[a] + vocab[b]
        first_special = len(vocab)
        self.special_tokens = {token: first_special + k for k, token in enumerate(self._special_list)}
        for token, token_id in self.special_tokens.items():
            vocab[token_id] = token.encode("utf-8")
        self.vocab: dict[int, bytes] = vocab
        self._special_re = (
            regex.compile("|".join(regex.escape(t) for t in sorted(self._special_list, key=len, reverse=True)))
            if self._special_list
            else None
        )
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """Number of token ids: 256 bytes, the merges and the special tokens."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={self._special_list!r})"
        )

    @classmethod
    def from_merges(
        cls,
        merges: Sequence[tuple[int, int]],
        pattern: str = GPT2_SPLIT_PATTERN,
        special_tokens: Sequence[str] | None = None,
        merge_counts: Sequence[int] | None = None,
    ) -> BPETokenizer:
        """Build a tokenizer from a list of merges (for example a prefix of another's).

        Parameters
        ----------
        merges : sequence of (int, int)
            Merge ``i`` joins two existing ids (below ``256 + i``) into ``256 + i``.
        pattern, special_tokens
            As for the constructor.
        merge_counts : sequence of int, optional
            The training counts of the merges, kept as ``merge_counts``.

        Raises
        ------
        ValueError
            If a merge is not a pair of ids that exist when it is made, or if
            `merge_counts` does not have one entry per merge.
        """
        tokenizer = cls(pattern, special_tokens)
        checked = []
        for i, pair in enumerate(merges):
            try:
                a, b = (operator.index(v) for v in pair)
            except (TypeError, ValueError):
                raise ValueError(f"merges[{i}] must be a pair of int ids, got {pair!r}") from None
            if not (0 <= a < _N_BYTES + i and 0 <= b < _N_BYTES + i):
                raise ValueError(
                    f"merges[{i}] must join ids that exist before it (0 to {_N_BYTES + i - 1}), got {(a, b)}"
                )
            checked.append((a, b))
        counts = [] if merge_counts is None else list(merge_counts)
        if counts and len(counts) != len(checked):
            raise ValueError(f"merge_counts must have one entry per merge ({len(checked)}), got {len(counts)}")
        tokenizer._set_merges(checked, counts)
        return tokenizer

    # ------------------------------------------------------------------ training
    def train(self, text: str | Iterable[str], vocab_size: int, *, verbose: bool = False) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from `text`, replacing any earlier ones.

        The text is pre-tokenised, and each distinct chunk is kept once with its
        frequency. Pair counts are kept *incrementally*: an index from each pair to the
        chunks that contain it finds the chunks a merge changes, only those are
        recounted, and a heap with lazy deletion (stale entries are skipped when
        popped) yields the most frequent pair.

        Ties between pairs of equal count go to the pair ``(a, b)`` with the smallest
        ``(rank(a), rank(b))``, where a merged token's rank is its id and a byte's rank
        is its position in GPT-2's byte table (:func:`bytes_to_unicode`): that is the
        rule of Hugging Face ``tokenizers``' BPE trainer, so both learn the same merges.

        Parameters
        ----------
        text : str or iterable of str
            The training text; with several strings, no chunk spans two of them.
        vocab_size : int
            Target size of the learned vocabulary (bytes plus merges), at least 256.
            Special tokens come on top. Training stops early if no pair is left.
        verbose : bool, default False
            Print every merge (for small experiments).

        Returns
        -------
        BPETokenizer
            `self`, trained: ``merges``, ``merge_counts``, ``vocab``,
            ``special_tokens`` and ``stats`` are set anew.

        Raises
        ------
        TypeError
            If `text` is not a str or an iterable of str, or `vocab_size` not an int.
        ValueError
            If `vocab_size` is below 256 or the text holds a lone surrogate.
        """
        vocab_size = _check_vocab_size(vocab_size)
        chunks, freqs = _chunk_counts(text, self._compiled)
        n_chunk_bytes = sum(len(ids) for ids in chunks)
        n_merges = vocab_size - _N_BYTES
        token_bytes = [bytes([b]) for b in range(_N_BYTES)]  # only for verbose printing

        pair_counts: Counter[tuple[int, int]] = Counter()
        where: dict[tuple[int, int], set[int]] = {}
        visits = 0
        for index, (ids, freq) in enumerate(zip(chunks, freqs)):
            visits += max(len(ids) - 1, 0)
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += freq
                where.setdefault(pair, set()).add(index)
        heap = [(-count, _tie_rank(a), _tie_rank(b), (a, b)) for (a, b), count in pair_counts.items()]
        heapq.heapify(heap)

        merges: list[tuple[int, int]] = []
        counts: list[int] = []
        while len(merges) < n_merges:
            pair, count = None, 0
            while heap:
                negative, _, _, candidate = heapq.heappop(heap)
                if pair_counts.get(candidate, 0) == -negative > 0:  # skip stale entries
                    pair, count = candidate, -negative
                    break
            if pair is None:
                break
            new_id = _N_BYTES + len(merges)
            merges.append(pair)
            counts.append(count)
            changed: Counter[tuple[int, int]] = Counter()
            for index in where.pop(pair):
                ids = chunks[index]
                merged = _merge(ids, pair, new_id)
                if len(merged) == len(ids):  # the index is a superset: this chunk lost the pair earlier
                    continue
                freq = freqs[index]
                visits += len(ids) + len(merged) - 2
                for old in zip(ids, ids[1:]):
                    changed[old] -= freq
                for new in zip(merged, merged[1:]):
                    changed[new] += freq
                    if new[0] == new_id or new[1] == new_id:
                        where.setdefault(new, set()).add(index)
                chunks[index] = merged
            for changed_pair, delta in changed.items():
                if delta:
                    pair_counts[changed_pair] += delta
                    if pair_counts[changed_pair] > 0:
                        a, b = changed_pair
                        heapq.heappush(heap, (-pair_counts[changed_pair], _tie_rank(a), _tie_rank(b), changed_pair))
            pair_counts.pop(pair, None)
            if verbose:
                token_bytes.append(token_bytes[pair[0]] + token_bytes[pair[1]])
                print(f"merge {len(merges)}/{n_merges}: {token_bytes[pair[0]]!r} + {token_bytes[pair[1]]!r} (count {count})")
        self._set_merges(merges, counts)
        self.stats = TrainingStats(len(chunks), n_chunk_bytes, visits)
        return self

    def pair_bytes(self, pair: tuple[int, int]) -> tuple[bytes, bytes]:
        """The bytes of the two tokens of a pair of ids, such as a merge."""
        return self.vocab[pair[0]], self.vocab[pair[1]]

    # ------------------------------------------------------------------ encoding
    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) >= 2:
            # The pair learned earliest goes first; a pair made of a newer token always ranks later.
            pair = min(zip(ids, ids[1:]), key=lambda p: self._ranks.get(p, math.inf))
            if pair not in self._ranks:
                break
            ids = _merge(ids, pair, self._ranks[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        out: list[int] = []
        for chunk in _split(self._compiled, text):
            out.extend(self._encode_chunk(chunk))
        return out

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Encode `text` as token ids.

        Each pre-tokenised chunk starts as its UTF-8 bytes; then the adjacent pair that
        was learned earliest is merged (every occurrence, left to right) until no
        learned pair is left, which gives the same result as applying all merges in
        training order.

        Parameters
        ----------
        text : str
            Any string without lone surrogates.
        allow_special : bool, default True
            Encode occurrences of the special tokens as their ids. If False they are
            encoded as ordinary text.

        Returns
        -------
        list of int

        Raises
        ------
        TypeError
            If `text` is not a str.
        ValueError
            If `text` holds a lone surrogate (not encodable as UTF-8).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {_describe(text)}")
        _utf8(text, "text")
        if self._special_re is None or not allow_special:
            return self._encode_ordinary(text)
        out: list[int] = []
        end = 0
        for match in self._special_re.finditer(text):
            out.extend(self._encode_ordinary(text[end : match.start()]))
            out.append(self.special_tokens[match.group()])
            end = match.end()
        out.extend(self._encode_ordinary(text[end:]))
        return out

    def _check_ids(self, ids: object) -> list[int]:
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a sequence of int token ids, got {_describe(ids)}")
        checked = []
        for k, token in enumerate(ids):
            if isinstance(token, bool):
                raise TypeError(f"ids must hold int token ids, but item {k} is {token!r}")
            try:
                token = operator.index(token)
            except TypeError:
                raise TypeError(f"ids must hold int token ids, but item {k} is {_describe(token)}") from None
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"ids must lie in [0, {self.vocab_size}), but item {k} is {token}")
            checked.append(token)
        return checked

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes that `ids` stand for, concatenated.

        Raises
        ------
        TypeError
            If `ids` is not a sequence of ints.
        ValueError
            If an id is outside the vocabulary.
        """
        return b"".join(self.vocab[t] for t in self._check_ids(ids))

    def decode(self, ids: Sequence[int]) -> str:
        """Decode token ids into text.

        ``decode(encode(s)) == s`` for every string. An arbitrary list of ids need not
        spell valid UTF-8 (a single token may hold the first byte of a character);
        invalid byte sequences become U+FFFD, the replacement character
        (``errors="replace"``), as in GPT-2's decoder.

        Raises
        ------
        TypeError
            If `ids` is not a sequence of ints.
        ValueError
            If an id is outside the vocabulary.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[bytes]:
        """The bytes of each token of ``encode(text)`` (to see where the boundaries fall)."""
        return [self.vocab[t] for t in self.encode(text)]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the tokenizer to a JSON file (pattern, special tokens, merges, counts)."""
        data = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "pattern": self.pattern,
            "special_tokens": self._special_list,
            "merges": [list(pair) for pair in self.merges],
            "merge_counts": self.merge_counts,
        }
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a tokenizer saved by this class.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"path must name a JSON file written by BPETokenizer.save, got {str(path)!r} ({err})") from err
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"path must name a file written by BPETokenizer.save (format {_FORMAT!r}), got {str(path)!r}")
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"the file's format version must be {_FORMAT_VERSION}, got {data.get('version')!r}")
        missing = [key for key in ("pattern", "special_tokens", "merges") if key not in data]
        if missing:
            raise ValueError(f"the file {str(path)!r} lacks the field(s) {missing} that BPETokenizer.save writes")
        return cls.from_merges(
            data["merges"],
            pattern=data["pattern"],
            special_tokens=data["special_tokens"],
            merge_counts=data.get("merge_counts") or None,
        )


def train_naive(
    text: str | Iterable[str], vocab_size: int, pattern: str = GPT2_SPLIT_PATTERN
) -> BPETokenizer:
    """The textbook BPE trainer: recount every pair after every merge.

    Same chunks, same frequencies and same tie-breaking rule as
    :meth:`BPETokenizer.train`, but each merge costs a pass over the whole
    (deduplicated) corpus: ``O(merges x corpus)``. The reference for the tests and
    for ``benchmarks/tokenizer.py``.

    Parameters
    ----------
    text : str or iterable of str
        The training text.
    vocab_size : int
        Target vocabulary size, at least 256.
    pattern : str, default :data:`GPT2_SPLIT_PATTERN`
        The pre-tokenisation pattern.

    Returns
    -------
    BPETokenizer
        A tokenizer with the learned merges.
    """
    vocab_size = _check_vocab_size(vocab_size)
    compiled = _check_pattern(pattern)
    chunks, freqs = _chunk_counts(text, compiled)
    n_bytes = sum(len(c) for c in chunks)
    merges: list[tuple[int, int]] = []
    counts: list[int] = []
    visits = 0
    while len(merges) < vocab_size - _N_BYTES:
        pair_counts: Counter[tuple[int, int]] = Counter()
        for ids, freq in zip(chunks, freqs):
            visits += max(len(ids) - 1, 0)
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += freq
        if not pair_counts:
            break
        pair = min(pair_counts, key=lambda p: (-pair_counts[p], _tie_rank(p[0]), _tie_rank(p[1])))
        new_id = _N_BYTES + len(merges)
        merges.append(pair)
        counts.append(pair_counts[pair])
        chunks = [_merge(ids, pair, new_id) for ids in chunks]
    tokenizer = BPETokenizer.from_merges(merges, pattern=pattern, merge_counts=counts)
    tokenizer.stats = TrainingStats(len(chunks), n_bytes, visits)
    return tokenizer


def bytes_per_token(tokenizer: BPETokenizer, texts: str | Iterable[str]) -> float:
    """Compression: UTF-8 bytes of `texts` divided by the number of tokens they encode to.

    Raises
    ------
    TypeError
        If `tokenizer` is not a :class:`BPETokenizer`.
    ValueError
        If the texts are empty.
    """
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"tokenizer must be a BPETokenizer, got {_describe(tokenizer)}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    n_bytes = sum(len(_utf8(t, "texts")) for t in texts)
    n_tokens = sum(len(tokenizer.encode(t, allow_special=False)) for t in texts)
    if n_tokens == 0:
        raise ValueError("texts must hold at least one character, got only empty text")
    return n_bytes / n_tokens


# ---------------------------------------------------------------------- exercises

def check_exercise_1(answer: object) -> bool:
    """Exercise 1: how many byte tokens does an untrained tokenizer give ``"你好, world"``?"""
    expected = len(BPETokenizer().encode("你好, world"))
    return _report(
        answer == expected,
        f"Correct: 2 x 3 bytes for the two characters, then ', world' is 7 ASCII bytes: {expected}.",
        "Not yet: count UTF-8 bytes; a CJK character of the Basic Multilingual Plane takes 3.",
    )


def check_exercise_2(answer: object) -> bool:
    """Exercise 2: the first merge learned from ``"low lower lowest"`` (as a pair of bytes)."""
    tokenizer = BPETokenizer().train("low lower lowest", 257)
    expected = tokenizer.pair_bytes(tokenizer.merges[0])
    ok = isinstance(answer, tuple) and tuple(answer) == expected
    return _report(
        ok,
        f"Correct: {expected} and (b'o', b'w') both occur {tokenizer.merge_counts[0]} times, and the tie goes "
        "to the pair whose bytes come first in GPT-2's byte order.",
        "Not yet: pre-tokenise first (the words keep their leading space), count adjacent byte pairs per chunk, "
        "and break ties as BPETokenizer.train documents. Answer with a pair of bytes, like (b'a', b'b').",
    )


def check_exercise_3(answer: object) -> bool:
    """Exercise 3: with the GPT-2 pattern, into how many chunks is ``"I've 12345 cats!!"`` split?"""
    chunks = pretokenize("I've 12345 cats!!")
    expected = len(chunks)
    return _report(
        answer == expected,
        f"Correct: {chunks}, {expected} chunks.",
        "Not yet: go through the pattern's alternatives: contractions, ' ?letters', ' ?digits', ' ?other', spaces.",
    )
