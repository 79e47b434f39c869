"""Tests of mlnotes.sequence.tokenizer (chapter book/sequence/tokenizer.ipynb)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("regex")  # the pre-tokenisation patterns need \p{L} classes

from mlnotes.sequence.tokenizer import (  # noqa: E402
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    _merge,
    bytes_per_token,
    bytes_to_unicode,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    pretokenize,
    train_naive,
)

# A small multilingual text: English, Chinese, accents (precomposed and combining),
# emoji with a skin-tone modifier, digits, contractions, tabs and repeated runs.
MIXED = (
    "The tokenizer's job isn't hard: it turns text into integers. "
    "分词器把文本变成整数，中文字符在合并之前各占三个字节。中文、中文、中文！ "
    "Café, cafe\u0301, naïve; 👍🏽👍🏽 ok 👍. 12345 + 678 = 13023.\n\n"
    "\tindentation    and   spaces   aaaa aaaaa bbbb aaaa "
) * 3


def hf_merges(texts: list[str], vocab_size: int) -> list[tuple[int, int]]:
    """Train Hugging Face's byte-level BPE and translate its merges into our ids.

    Our merge ``i`` makes id ``256 + i``; HF spells tokens with GPT-2's byte-to-unicode
    characters, so each merge's two strings are mapped back to bytes and then to our ids.
    """
    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    ids = {bytes([b]): b for b in range(256)}
    out = []
    for left, right in (m.split(" ") if isinstance(m, str) else m for m in merges):
        a, b = bytes(to_byte[c] for c in left), bytes(to_byte[c] for c in right)
        out.append((ids[a], ids[b]))
        ids[a + b] = 255 + len(out)
    return out


def apply_merges_in_order(tokenizer: BPETokenizer, chunk: str) -> list[int]:
    """Encoding the slow way: every merge, in training order, over the chunk's bytes."""
    ids = list(chunk.encode("utf-8"))
    for i, pair in enumerate(tokenizer.merges):
        ids = _merge(ids, pair, 256 + i)
    return ids


@pytest.fixture(scope="module")
def mixed_tokenizer() -> BPETokenizer:
    return BPETokenizer(special_tokens=["<|endoftext|>"]).train(MIXED, 400)


@pytest.fixture(scope="module")
def news() -> list[str]:
    pytest.importorskip("gensim")
    from mlnotes.datasets import load_news_corpus

    return load_news_corpus()


# ---------------------------------------------------------------------- golden
def test_merges_equal_huggingface_on_mixed_text() -> None:
    ours = BPETokenizer().train(MIXED, 400)
    assert len(ours.merges) == 144
    assert ours.merges == hf_merges([MIXED], 400)


def test_merges_equal_huggingface_on_news_corpus(news: list[str]) -> None:
    ours = BPETokenizer().train(news, 1024)
    reference = hf_merges(news, 1024)
    assert len(ours.merges) == len(reference) == 768
    assert ours.merges == reference
    assert len(set(ours.vocab.values())) == len(ours.vocab)  # no token spelled twice, so the ids line up


def test_tie_free_prefix_equals_tiktoken_educational_trainer(news: list[str]) -> None:
    """tiktoken's educational trainer breaks ties by first occurrence in the text, we by
    GPT-2's byte order: the two must agree on every merge up to the first tied top count."""
    educational = pytest.importorskip("tiktoken._educational")
    text = "\n".join(news[:10])
    ours = BPETokenizer().train(text, 300)
    ranks = educational.bpe_train(text, 300, GPT2_SPLIT_PATTERN, visualise=None)
    theirs = [token for token, _ in sorted(ranks.items(), key=lambda item: item[1])][256:]

    chunks = [(list(chunk.encode()), n) for chunk, n in Counter(pretokenize(text)).items()]
    tie_free = 0
    for i, pair in enumerate(ours.merges):
        counts: Counter[tuple[int, int]] = Counter()
        for ids, n in chunks:
            for p in zip(ids, ids[1:]):
                counts[p] += n
        (_, best), (_, second) = counts.most_common(2)
        if best == second:
            break
        assert counts[pair] == best
        tie_free = i + 1
        chunks = [(_merge(ids, pair, 256 + i), n) for ids, n in chunks]
    assert tie_free >= 15
    assert [ours.vocab[256 + i] for i in range(tie_free)] == theirs[:tie_free]


@given(st.text(alphabet="ab c\n", max_size=60), st.integers(256, 300))
@settings(max_examples=60, deadline=None)
def test_incremental_training_equals_naive_training(text: str, vocab_size: int) -> None:
    """Runs of one letter ('aaaa') make overlapping pairs and many ties: the hard cases."""
    fast = BPETokenizer().train(text, vocab_size)
    slow = train_naive(text, vocab_size)
    assert fast.merges == slow.merges
    assert fast.merge_counts == slow.merge_counts


def test_incremental_equals_naive_on_mixed_text_and_does_less_work() -> None:
    fast = BPETokenizer().train(MIXED, 330)
    slow = train_naive(MIXED, 330)
    assert fast.merges == slow.merges and fast.merge_counts == slow.merge_counts
    assert fast.stats.n_chunks == slow.stats.n_chunks
    assert fast.stats.pair_visits < slow.stats.pair_visits / 5


def test_merge_counts_do_not_increase(mixed_tokenizer: BPETokenizer) -> None:
    counts = mixed_tokenizer.merge_counts
    assert all(later <= earlier for earlier, later in zip(counts, counts[1:]))


def test_smaller_vocabulary_is_a_prefix(news: list[str]) -> None:
    big = BPETokenizer().train(news[:60], 700)
    small = BPETokenizer().train(news[:60], 400)
    assert small.merges == big.merges[:144]


def test_byte_table_is_gpt2s() -> None:
    table = bytes_to_unicode()
    assert len(table) == len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert list(table)[:3] == [33, 34, 35] and list(table)[220] == ord(" ")  # GPT-2's id of the space is 220


# ---------------------------------------------------------------------- properties
@given(st.text())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_any_string_trained(mixed_tokenizer: BPETokenizer, text: str) -> None:
    assert mixed_tokenizer.decode(mixed_tokenizer.encode(text)) == text


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_round_trip_any_string_untrained(text: str) -> None:
    tokenizer = BPETokenizer()
    ids = tokenizer.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text


@given(st.text(min_size=1, max_size=80), st.text(max_size=80))
@settings(max_examples=40, deadline=None)
def test_round_trip_after_training_on_random_text(train_text: str, text: str) -> None:
    tokenizer = BPETokenizer(GPT4_SPLIT_PATTERN).train(train_text, 300)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.decode(tokenizer.encode(train_text)) == train_text


@pytest.mark.parametrize("pattern", [GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, r"\p{L}+"])
@given(text=st.text())
@settings(max_examples=100, deadline=None)
def test_pretokenize_covers_the_text(pattern: str, text: str) -> None:
    assert "".join(pretokenize(text, pattern)) == text


def test_encode_equals_merges_applied_in_training_order(mixed_tokenizer: BPETokenizer) -> None:
    naive = train_naive(MIXED, 400)
    assert naive.merges == mixed_tokenizer.merges
    for chunk in set(pretokenize(MIXED + " 中文分词 unseen words 9999")):
        assert mixed_tokenizer.encode(chunk) == apply_merges_in_order(naive, chunk)


def test_encode_is_deterministic_and_cache_free(mixed_tokenizer: BPETokenizer) -> None:
    text = "Café 中文 tokenizer's 12345"
    first = mixed_tokenizer.encode(text)
    assert mixed_tokenizer.encode(text) == first
    assert BPETokenizer.from_merges(mixed_tokenizer.merges, special_tokens=["<|endoftext|>"]).encode(text) == first


def test_chinese_characters_cost_three_byte_tokens_before_merges() -> None:
    tokenizer = BPETokenizer()
    assert tokenizer.encode("中文") == [0xE4, 0xB8, 0xAD, 0xE6, 0x96, 0x87]
    for char in "分词器与的中文":
        assert len(tokenizer.encode(char)) == 3
    assert len(tokenizer.encode("·")) == 2 and len(tokenizer.encode("𠀀")) == 4  # Latin-1 and astral plane


def test_news_tokenizer_never_merges_chinese_bytes(news: list[str]) -> None:
    tokenizer = BPETokenizer().train(news, 512)
    assert all(len(tokenizer.encode(c)) == 3 for c in "分词器与中文")
    assert bytes_per_token(tokenizer, news[-20:]) > 2.0


def test_special_tokens(mixed_tokenizer: BPETokenizer) -> None:
    eot = mixed_tokenizer.special_tokens["<|endoftext|>"]
    assert eot == 400 and mixed_tokenizer.vocab_size == 401
    ids = mixed_tokenizer.encode("hi<|endoftext|>中")
    assert ids.count(eot) == 1
    assert mixed_tokenizer.decode(ids) == "hi<|endoftext|>中"
    plain = mixed_tokenizer.encode("<|endoftext|>", allow_special=False)
    assert eot not in plain and mixed_tokenizer.decode(plain) == "<|endoftext|>"


def test_decode_replaces_invalid_utf8() -> None:
    tokenizer = BPETokenizer()
    assert tokenizer.decode([0xE4]) == "\ufffd"
    assert tokenizer.decode([0xE4, 0xB8, 0xAD]) == "中"
    assert tokenizer.decode_bytes([0xE4]) == b"\xe4"


def test_save_load_round_trip(tmp_path, mixed_tokenizer: BPETokenizer) -> None:
    path = tmp_path / "tokenizer.json"
    mixed_tokenizer.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == mixed_tokenizer.merges
    assert loaded.merge_counts == mixed_tokenizer.merge_counts
    assert loaded.pattern == mixed_tokenizer.pattern
    assert loaded.special_tokens == mixed_tokenizer.special_tokens
    assert loaded.vocab == mixed_tokenizer.vocab
    assert loaded.encode(MIXED + "<|endoftext|>") == mixed_tokenizer.encode(MIXED + "<|endoftext|>")
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_training_on_a_list_keeps_texts_apart() -> None:
    joined = BPETokenizer().train("ab", 260)
    split = BPETokenizer().train(["a", "b"], 260)
    assert joined.merges == [(97, 98)] and split.merges == []  # nothing to merge: no chunk spans the two


def test_bytes_per_token() -> None:
    tokenizer = BPETokenizer()
    assert bytes_per_token(tokenizer, ["abc", "中"]) == 1.0
    assert bytes_per_token(BPETokenizer().train("abababab", 257), "abab") == 2.0  # one merge: ab
    assert bytes_per_token(BPETokenizer().train("abababab", 258), "abab") == 4.0  # then abab


def test_exercise_checkers(capsys) -> None:
    assert check_exercise_1(13) and not check_exercise_1(9)
    assert check_exercise_2((b"l", b"o")) and not check_exercise_2((b"o", b"w"))
    assert check_exercise_3(5) and not check_exercise_3(4)
    assert "Correct" in capsys.readouterr().out


# ---------------------------------------------------------------------- bad input
def test_bad_input() -> None:
    tokenizer = BPETokenizer()
    with pytest.raises(ValueError, match="vocab_size must be at least 256"):
        tokenizer.train("text", 255)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        tokenizer.train("text", 300.0)
    with pytest.raises(TypeError, match="text must be a str or an iterable of str"):
        tokenizer.train(b"bytes", 300)
    with pytest.raises(TypeError, match="item 1"):
        tokenizer.train(["ok", 3], 300)
    with pytest.raises(TypeError, match="text must be a str"):
        tokenizer.encode(b"bytes")
    with pytest.raises(ValueError, match="lone surrogate"):
        tokenizer.encode("a\ud800b")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 256\), but item 1 is 256"):
        tokenizer.decode([1, 256])
    with pytest.raises(TypeError, match="ids must hold int token ids, but item 0"):
        tokenizer.decode([1.0])
    with pytest.raises(TypeError, match="ids must be a sequence"):
        tokenizer.decode("abc")
    with pytest.raises(ValueError, match="pattern must be a valid regular expression"):
        BPETokenizer(pattern="(")
    with pytest.raises(TypeError, match="pattern must be a regular expression"):
        BPETokenizer(pattern=None)
    with pytest.raises(ValueError, match="must not repeat"):
        BPETokenizer(special_tokens=["<s>", "<s>"])
    with pytest.raises(TypeError, match="special_tokens must be a sequence of str"):
        BPETokenizer(special_tokens="<s>")
    with pytest.raises(ValueError, match=r"merges\[0\] must join ids that exist"):
        BPETokenizer.from_merges([(256, 1)])
    with pytest.raises(ValueError, match="texts must hold at least one character"):
        bytes_per_token(tokenizer, [""])


def test_load_rejects_other_files(tmp_path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"model": "something else"}), encoding="utf-8")
    with pytest.raises(ValueError, match="written by BPETokenizer.save"):
        BPETokenizer.load(path)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ValueError, match="JSON file"):
        BPETokenizer.load(path)
    path.write_text(json.dumps({"format": "mlnotes-bpe", "version": 1, "pattern": GPT2_SPLIT_PATTERN}), encoding="utf-8")
    with pytest.raises(ValueError, match="lacks the field"):
        BPETokenizer.load(path)
