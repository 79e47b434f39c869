"""Part 3 benchmark: forward time of a recurrence against a Transformer block, over sequence length.

For the chapter ``book/sequence/lstm_gru_transformer.ipynb``: a recurrence must run its
``T`` steps one after another, a self-attention block processes all positions at
once. Prints, for each sequence length, the forward time (no gradients) of

* our LSTM (``mlnotes.sequence.lstm_gru_transformer.LSTM``, a Python loop over time),
* PyTorch's ``torch.nn.LSTM`` (cuDNN's fused kernel on a GPU),
* our ``TransformerEncoderBlock``,
* PyTorch's ``torch.nn.TransformerEncoderLayer``,

and the ratio of each LSTM's time to our block's. All four have width ``--d-model``
(LSTM hidden size = block width, 4 heads, feed-forward 4x), batch ``--batch``.
Times are the fastest of ``--repeats`` runs after a warm-up.

Run: ``python benchmarks/lstm_vs_attention.py`` (CPU, one thread, a few seconds) or
``python benchmarks/lstm_vs_attention.py --device cuda --dtype bfloat16``.
There is no pass/fail goal: the numbers are reported in the chapter.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from mlnotes.sequence.lstm_gru_transformer import LSTM, TransformerEncoderBlock, forward_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", default="64,128,256,512,1024,2048")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype, d = torch.device(args.device), getattr(torch, args.dtype), args.d_model
    torch.manual_seed(0)
    kw = {"device": device, "dtype": dtype}
    models = {
        "ours LSTM": LSTM(d, d, batch_first=True, **kw),
        "torch LSTM": nn.LSTM(d, d, batch_first=True, **kw),
        "ours block": TransformerEncoderBlock(d, 4, 4 * d, **kw).eval(),
        "torch block": nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, **kw).eval(),
    }
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"# {name}; torch {torch.__version__}; {args.dtype}; batch {args.batch}, width {d}; forward, no gradients; ms")
    header = f"{'T':>6} " + " ".join(f"{k:>12}" for k in models) + f" {'ours LSTM/ours block':>21} {'torch LSTM/ours block':>22}"
    print(header)
    for seq_len in (int(v) for v in args.lengths.split(",")):
        x = torch.randn(args.batch, seq_len, d, **kw)
        ms = {k: 1e3 * forward_time(m, x, repeats=args.repeats) for k, m in models.items()}
        ratio_ours = ms["ours LSTM"] / ms["ours block"]
        ratio_torch = ms["torch LSTM"] / ms["ours block"]
        print(f"{seq_len:>6} " + " ".join(f"{v:>12.3f}" for v in ms.values()) + f" {ratio_ours:>21.3g} {ratio_torch:>22.3g}")


if __name__ == "__main__":
    main()
