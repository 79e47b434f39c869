"""Part 3 benchmark: our word2vec against gensim's, side by side in one run.

Trains skip-gram and CBOW with negative sampling on the Lee news corpus (300
articles, about 58,000 tokens; ``mlnotes.datasets.load_news_corpus``) with the
settings of gensim's own sanity tests (``test_sg_neg`` and ``test_cbow_neg`` in
``gensim/test/test_word2vec.py``), and prints for each:

* training throughput in words per second: corpus tokens in the vocabulary times
  epochs, divided by the wall-clock training time (the same definition for both
  libraries; gensim's own log counts the words left after subsampling instead),
  and the CPU time of the process;
* the ratio of our throughput to gensim's with one worker thread (like for like:
  our PyTorch code runs on one thread) and with gensim's default three workers;
* the rank of 'bombings' among the nearest words of 'attacks' (gensim's check:
  below 50), for every repeat.

gensim's inner loop is compiled C (Cython and BLAS) that updates one (center,
context) pair at a time; ours is PyTorch on batches of pairs, so its speed is
set by memory traffic of the batched gathers and scatters. Times are the
fastest of ``--repeats`` runs (default 3), because the machine may be shared.

Run: ``python benchmarks/word2vec.py`` (about two minutes on a 2-core laptop),
``--device cuda`` to time ours on a GPU (batch size ``--gpu-batch``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mlnotes.datasets import load_news_corpus
from mlnotes.sequence.word2vec import Word2VecConfig, build_vocabulary, neighbour_rank, train_word2vec

SETTINGS = {
    # gensim's test_sg_neg: sg=1, window=4, negative=15, min_count=5, epochs=10 (alpha 0.025, sample 1e-3 by default)
    "skip-gram": dict(sg=True, window=4, negative=15, min_count=5, epochs=10, lr=0.025, sample=1e-3, vector_size=100),
    # gensim's test_cbow_neg: sg=0, cbow_mean=1, alpha=0.05, window=5, negative=15, min_count=5, epochs=10, sample=0
    "CBOW": dict(sg=False, window=5, negative=15, min_count=5, epochs=10, lr=0.05, sample=0.0, vector_size=100),
}


def time_ours(sentences, settings, seed, device, batch_size):
    config = Word2VecConfig(batch_size=batch_size, **settings)
    cpu = time.process_time()
    model = train_word2vec(sentences, config, generator=seed, device=device)
    cpu = time.process_time() - cpu
    return model.seconds, cpu, neighbour_rank(model, "attacks", "bombings")


def time_gensim(sentences, settings, seed, workers):
    from gensim.models import Word2Vec

    model = Word2Vec(
        vector_size=settings["vector_size"], window=settings["window"], negative=settings["negative"], hs=0,
        min_count=settings["min_count"], epochs=settings["epochs"], alpha=settings["lr"], sample=settings["sample"],
        sg=int(settings["sg"]), cbow_mean=1, workers=workers, seed=seed,
    )
    model.build_vocab(sentences)
    cpu, wall = time.process_time(), time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, neighbour_rank(model, "attacks", "bombings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=256, help="our batch size on the CPU")
    parser.add_argument("--gpu-batch", type=int, default=4096, help="our batch size on a GPU")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sentences = load_news_corpus(tokenize=True)
    batch = args.gpu_batch if args.device.startswith("cuda") else args.batch
    runners = {
        f"ours ({args.device}, batch {batch})": lambda s, seed: time_ours(sentences, s, seed, args.device, batch),
        "gensim, workers=1": lambda s, seed: time_gensim(sentences, s, seed, 1),
        "gensim, workers=3": lambda s, seed: time_gensim(sentences, s, seed, 3),
    }
    print(f"Lee news corpus: {len(sentences)} articles, {sum(map(len, sentences)):,} tokens; best of {args.repeats} runs")
    header = (
        f"{'model':10s} {'implementation':28s} {'wall s':>7s} {'CPU s':>7s} {'words/s':>9s} "
        f"{'ours/this':>9s} {'(by CPU)':>9s}  rank of 'bombings'"
    )
    print(header)
    print("-" * len(header))
    for name, settings in SETTINGS.items():
        words = int(build_vocabulary(sentences, settings["min_count"]).counts.sum()) * settings["epochs"]
        rows = {}
        for label, run in runners.items():
            results = [run(settings, seed) for seed in range(args.repeats)]
            rows[label] = (min(r[0] for r in results), min(r[1] for r in results), [r[2] for r in results])
        ours_wall, ours_cpu, _ = next(iter(rows.values()))
        for label, (wall, cpu, ranks) in rows.items():
            print(
                f"{name:10s} {label:28s} {wall:7.2f} {cpu:7.2f} {words / wall:9,.0f} {wall / ours_wall:9.2f} "
                f"{cpu / ours_cpu:9.2f}  {ranks} (median {statistics.median(ranks):g})"
            )
    print(
        "\nwords/s: corpus tokens in the vocabulary x epochs / wall-clock seconds; 'ours/this': our words/s over\n"
        "this row's (= its time over ours), by wall-clock time and by process CPU time."
    )


if __name__ == "__main__":
    main()
