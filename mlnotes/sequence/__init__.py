"""Part 3 · Sequence models and attention: tokenizers, word2vec, RNNs, LSTM/GRU/Transformer,
position encodings, RoPE and FlashAttention.

Each chapter's code is in its own module (``mlnotes.sequence.<slug>``); this package
imports nothing heavy, so ``import mlnotes.sequence`` stays fast.
"""
