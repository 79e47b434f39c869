"""Part 3 benchmark: BPE training with incremental pair counts against the naive trainer.

Trains byte-level BPE on the Lee news corpus (``mlnotes.datasets.load_news_corpus``,
about 360 KB, shipped with gensim) at a few vocabulary sizes with

* ``BPETokenizer.train``: incremental pair counts (pair -> chunks index, lazy heap);
* ``train_naive``: recounts every pair of the deduplicated corpus after every merge;
* Hugging Face ``tokenizers`` (Rust) ``BpeTrainer``, for scale and as the reference
  whose merges ours must equal;

and prints one table: CPU seconds of each (the fastest of ``--repeats`` runs; CPU time
rather than wall time because the machine may be shared), the speed-up of ours over
the naive trainer, the pairs each trainer visited, and whether the merges agree.

Goal (Part 3 issue): ours at least 10x faster than the naive trainer at every size,
with identical merges. Exit status 1 when it is missed.

Run: ``python benchmarks/tokenizer.py`` (about a minute on a 2-core laptop),
``--sizes 512,1024,2048``, ``--repeats 3``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

from mlnotes.datasets import load_news_corpus
from mlnotes.sequence.tokenizer import BPETokenizer, bytes_to_unicode, train_naive

GOAL_SPEEDUP = 10.0


def hf_train(texts: list[str], vocab_size: int) -> list[tuple[int, int]]:
    """Hugging Face byte-level BPE, its merges translated into our ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    ids = {bytes([b]): b for b in range(256)}
    out = []
    for merge in json.loads(tokenizer.to_str())["model"]["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        a, b = bytes(to_byte[c] for c in left), bytes(to_byte[c] for c in right)
        out.append((ids[a], ids[b]))
        ids[a + b] = 255 + len(out)
    return out


def fastest(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Smallest CPU time of `repeats` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = run()
        best = min(best, time.process_time() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024", help="comma-separated vocabulary sizes")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours and HF per size (the naive trainer runs once)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    texts = load_news_corpus()
    print(f"corpus: {len(texts)} articles, {sum(len(t.encode()) for t in texts):,} bytes; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    header = (f"{'vocab':>6s} {'merges':>6s} {'ours s':>7s} {'naive s':>8s} {'speed-up':>8s} {'HF s':>6s} "
              f"{'pairs ours':>11s} {'pairs naive':>12s} {'=naive':>6s} {'=HF':>4s}")
    print(header)
    print("-" * len(header))
    ok = True
    for vocab_size in sizes:
        t_ours, ours = fastest(lambda v=vocab_size: BPETokenizer().train(texts, v), args.repeats)
        t_naive, naive = fastest(lambda v=vocab_size: train_naive(texts, v), 1)
        t_hf, hf = fastest(lambda v=vocab_size: hf_train(texts, v), args.repeats)
        speedup = t_naive / t_ours
        same_naive, same_hf = ours.merges == naive.merges, ours.merges == hf
        ok &= speedup >= GOAL_SPEEDUP and same_naive and same_hf
        print(f"{vocab_size:6d} {len(ours.merges):6d} {t_ours:7.2f} {t_naive:8.2f} {speedup:7.1f}x {t_hf:6.2f} "
              f"{ours.stats.pair_visits:11,d} {naive.stats.pair_visits:12,d} {str(same_naive):>6s} {str(same_hf):>4s}")
    print(f"goal: ours >= {GOAL_SPEEDUP:.0f}x faster than naive, same merges as naive and HF: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
