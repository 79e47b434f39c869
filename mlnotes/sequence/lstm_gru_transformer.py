"""LSTM and GRU cells and layers, and a Transformer encoder block, from scratch in PyTorch.

Implements the long short-term memory of Hochreiter and Schmidhuber, "Long
Short-Term Memory" (Neural Computation, 1997), with the forget gate of Gers,
Schmidhuber and Cummins (2000); the gated recurrent unit of Cho et al., "Learning
Phrase Representations using RNN Encoder-Decoder for Statistical Machine
Translation" (EMNLP 2014); and the encoder block of Vaswani et al., "Attention Is
All You Need" (NeurIPS 2017), post-norm as in the paper or pre-norm
(``norm_first=True``, Xiong et al. 2020).

Parameters are named and shaped like PyTorch's (``weight_ih_l0``, ``bias_hh_l1``,
``self_attn.out_proj.weight``, ...) and the forward passes return PyTorch's output
structures, so that weights copy over and the tests can compare with
``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.TransformerEncoderLayer``. None of
those modules (nor ``torch.nn.MultiheadAttention``) is used here.

Also here: the adding problem as a training entry point (:func:`train_adding_problem`),
the gradient flow over long lags (:func:`input_gradient_norms`), and the length of
the longest sequential chain of operations in a computation
(:func:`critical_path_length`), the measure of how much a model can run in parallel
over time.

The chapter is ``book/sequence/lstm_gru_transformer.ipynb``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlnotes.exercises import as_float as _as_float, report as _report
from mlnotes.runtime import as_generator

__all__ = [
    "lstm_cell",
    "gru_cell",
    "LSTMCell",
    "GRUCell",
    "LSTM",
    "GRU",
    "set_forget_bias",
    "causal_mask",
    "scaled_dot_product_attention",
    "MultiHeadSelfAttention",
    "TransformerEncoderBlock",
    "SequenceRegressor",
    "AddingProblemConfig",
    "AddingProblemResult",
    "train_adding_problem",
    "input_gradient_norms",
    "critical_path_length",
    "forward_time",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- validation helpers
def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_input(x: object, name: str, feature_size: int) -> torch.Tensor:
    """A floating tensor of shape (..., feature_size) with 2 or 3 dimensions and no NaN."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have 2 (unbatched) or 3 dimensions, got shape {tuple(x.shape)}")
    if x.shape[-1] != feature_size:
        raise ValueError(f"{name} must have {feature_size} features in its last dimension, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    return x


def _init_uniform(params: list[nn.Parameter], hidden_size: int, generator: torch.Generator | None) -> None:
    """PyTorch's initialisation of its recurrent layers: every weight and bias from U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            if generator is None or generator.device.type == p.device.type:
                p.uniform_(-bound, bound, generator=generator)
            else:  # draw on the generator's device, then move: the same numbers on any device
                p.copy_(torch.empty(p.shape, dtype=p.dtype, device=generator.device).uniform_(-bound, bound, generator=generator))


# --------------------------------------------------------------------------- the cells
def lstm_cell(
    x_proj: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, given the input's projection ``W_ih x_t + b_ih``.

    Gates in PyTorch's order (input, forget, cell candidate, output)::

        i, f, g, o = split(W_ih x_t + b_ih + W_hh h + b_hh)
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)      # the additive cell path
        h' = sigmoid(o) * tanh(c')

    Parameters
    ----------
    x_proj : torch.Tensor
        ``W_ih x_t + b_ih``, shape ``(batch, 4 * hidden)``.
    h, c : torch.Tensor
        Hidden and cell state, shape ``(batch, hidden)``.
    weight_hh : torch.Tensor
        Shape ``(4 * hidden, hidden)``.
    bias_hh : torch.Tensor or None
        Shape ``(4 * hidden,)``.

    Returns
    -------
    (h', c') : tuple of torch.Tensor
        Each of shape ``(batch, hidden)``.
    """
    gates = x_proj + F.linear(h, weight_hh, bias_hh)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gru_cell(
    x_proj: torch.Tensor,
    h: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
) -> torch.Tensor:
    """One GRU step, given the input's projection ``W_ih x_t + b_ih``.

    Gates in PyTorch's order (reset, update, new)::

        r = sigmoid(x_r + W_hr h + b_hr)
        z = sigmoid(x_z + W_hz h + b_hz)
        n = tanh(x_n + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h                        # interpolation, not a sum

    Parameters
    ----------
    x_proj : torch.Tensor
        ``W_ih x_t + b_ih``, shape ``(batch, 3 * hidden)``.
    h : torch.Tensor
        Hidden state, shape ``(batch, hidden)``.
    weight_hh : torch.Tensor
        Shape ``(3 * hidden, hidden)``.
    bias_hh : torch.Tensor or None
        Shape ``(3 * hidden,)``.

    Returns
    -------
    torch.Tensor
        The new hidden state, shape ``(batch, hidden)``.
    """
    x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


class _RecurrentCell(nn.Module):
    """Shared parameters of :class:`LSTMCell` and :class:`GRUCell`: ``weight_ih``, ``weight_hh``, biases."""

    n_gates: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = _check_positive_int(input_size, "input_size")
        self.hidden_size = _check_positive_int(hidden_size, "hidden_size")
        self.bias = bool(bias)
        kw = {"device": device, "dtype": dtype}
        rows = self.n_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(rows, **kw)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows, **kw)) if bias else None
        _init_uniform(list(self.parameters()), hidden_size, generator)

    def _check(self, x: torch.Tensor, hx: torch.Tensor | None, name: str = "hx") -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Batch an unbatched input; return (x, zero or given state, whether x was batched)."""
        if not isinstance(x, torch.Tensor) or x.ndim not in (1, 2):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be a tensor of shape (batch, {self.input_size}) or ({self.input_size},), got {shape}")
        batched = x.ndim == 2
        x = _check_input(x if batched else x.unsqueeze(0), "input", self.input_size)
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            return x, x.new_zeros(shape), batched
        if not isinstance(hx, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(hx).__name__}")
        hx = hx if batched else hx.unsqueeze(0)
        if tuple(hx.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(hx.shape)}")
        return x, hx, batched


class LSTMCell(_RecurrentCell):
    """An LSTM cell with PyTorch's interface (``torch.nn.LSTMCell``).

    Parameters
    ----------
    input_size, hidden_size : int
        Sizes of the input and of the hidden and cell states.
    bias : bool, default True
        Whether to use ``bias_ih`` and ``bias_hh``.
    generator : torch.Generator, optional
        Draws the initial weights from ``U(-1/sqrt(hidden), 1/sqrt(hidden))`` (PyTorch's
        initialisation); default: PyTorch's global generator.
    device, dtype : optional
        Where and in which precision to create the parameters.

    Attributes
    ----------
    weight_ih : nn.Parameter
        ``(4 * hidden, input)``, gates in the order input, forget, candidate, output.
    weight_hh : nn.Parameter
        ``(4 * hidden, hidden)``.
    bias_ih, bias_hh : nn.Parameter or None
        ``(4 * hidden,)`` each.
    """

    n_gates = 4

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``input`` of shape ``(batch, input)`` (or ``(input,)``) to ``(h', c')``.

        Parameters
        ----------
        input : torch.Tensor
            Shape ``(batch, input_size)`` or ``(input_size,)``.
        hx : tuple of torch.Tensor, optional
            ``(h, c)``, each ``(batch, hidden)``; default zeros.

        Returns
        -------
        (h', c') : tuple of torch.Tensor
            Each ``(batch, hidden)`` (``(hidden,)`` for an unbatched input).
        """
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"hx must be a tuple (h, c) of tensors, got {type(hx).__name__}")
        x, h, batched = self._check(input, None if hx is None else hx[0], "hx[0]")
        c = h.new_zeros(h.shape) if hx is None else self._check(input, hx[1], "hx[1]")[1]
        h, c = lstm_cell(F.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h[0], c[0])


class GRUCell(_RecurrentCell):
    """A GRU cell with PyTorch's interface (``torch.nn.GRUCell``).

    Parameters
    ----------
    input_size, hidden_size : int
        Sizes of the input and of the hidden state.
    bias : bool, default True
        Whether to use ``bias_ih`` and ``bias_hh``.
    generator : torch.Generator, optional
        Draws the initial weights (PyTorch's initialisation); default: the global generator.
    device, dtype : optional
        Where and in which precision to create the parameters.

    Attributes
    ----------
    weight_ih : nn.Parameter
        ``(3 * hidden, input)``, gates in the order reset, update, new.
    weight_hh : nn.Parameter
        ``(3 * hidden, hidden)``.
    bias_ih, bias_hh : nn.Parameter or None
        ``(3 * hidden,)`` each.
    """

    n_gates = 3

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        """One step: ``input`` of shape ``(batch, input)`` (or ``(input,)``) to ``h'`` of shape ``(batch, hidden)``."""
        x, h, batched = self._check(input, hx)
        h = gru_cell(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h[0]


# --------------------------------------------------------------------------- the layers
class _RecurrentLayers(nn.Module):
    """Multi-layer unidirectional recurrence with PyTorch's parameter names and shapes."""

    n_gates: int
    n_states: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = _check_positive_int(input_size, "input_size")
        self.hidden_size = _check_positive_int(hidden_size, "hidden_size")
        self.num_layers = _check_positive_int(num_layers, "num_layers")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        kw = {"device": device, "dtype": dtype}
        rows = self.n_gates * hidden_size
        for layer in range(num_layers):
            cols = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", nn.Parameter(torch.empty(rows, cols, **kw)))
            setattr(self, f"weight_hh_l{layer}", nn.Parameter(torch.empty(rows, hidden_size, **kw)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", nn.Parameter(torch.empty(rows, **kw)))
                setattr(self, f"bias_hh_l{layer}", nn.Parameter(torch.empty(rows, **kw)))
        _init_uniform(list(self.parameters()), hidden_size, generator)

    @classmethod
    def from_torch(cls, module: nn.Module) -> _RecurrentLayers:
        """A copy of a ``torch.nn.LSTM``/``GRU`` (unidirectional, no projection) with the same weights."""
        expected = {4: nn.LSTM, 3: nn.GRU}[cls.n_gates]
        if not isinstance(module, expected):
            raise TypeError(f"module must be a torch.nn.{expected.__name__}, got {type(module).__name__}")
        if module.bidirectional or getattr(module, "proj_size", 0):
            raise ValueError("module must be unidirectional and without proj_size")
        p = module.weight_ih_l0
        copy = cls(module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first, device=p.device, dtype=p.dtype)
        copy.load_state_dict(module.state_dict())
        return copy

    def _layer_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        get = lambda name: getattr(self, f"{name}_l{layer}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _check_state(self, state: object, name: str, batch: int, batched: bool) -> torch.Tensor:
        shape = (self.num_layers, batch, self.hidden_size) if batched else (self.num_layers, self.hidden_size)
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, got {type(state).__name__}")
        if tuple(state.shape) != shape:
            raise ValueError(f"{name} must have shape (num_layers, batch, hidden) = {shape}, got {tuple(state.shape)}")
        return state if batched else state.unsqueeze(1)

    def _run(self, input: torch.Tensor, states: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor], bool]:
        """Run all layers; ``states`` is a list of ``(num_layers, batch, hidden)`` tensors (h, or h and c)."""
        x = _check_input(input, "input", self.input_size)
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(0 if self.batch_first else 1)
        if not self.batch_first:
            x = x.transpose(0, 1)  # (batch, seq_len, features) inside
        batch = x.shape[0]
        if states is None:
            states = [x.new_zeros(self.num_layers, batch, self.hidden_size) for _ in range(self.n_states)]
        finals: list[list[torch.Tensor]] = [[] for _ in range(self.n_states)]
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer_weights(layer)
            # The input's contribution to every gate, for all time steps at once: this part is
            # parallel over time; only the recurrence below is sequential.
            x_proj = F.linear(x, w_ih, b_ih)
            state = [s[layer] for s in states]
            outputs = []
            for t in range(x.shape[1]):
                state = self._step(x_proj[:, t], state, w_hh, b_hh)
                outputs.append(state[0])
            x = torch.stack(outputs, dim=1)
            for k in range(self.n_states):
                finals[k].append(state[k])
        output = x if self.batch_first else x.transpose(0, 1)
        final = [torch.stack(f, dim=0) for f in finals]
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            final = [f.squeeze(1) for f in final]
        return output, final, batched


class LSTM(_RecurrentLayers):
    """A multi-layer LSTM with PyTorch's interface (``torch.nn.LSTM``, unidirectional, no projection).

    Parameters
    ----------
    input_size : int
        Features per time step.
    hidden_size : int
        Size of the hidden and cell states.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads layer ``k - 1``'s hidden states.
    bias : bool, default True
        Whether each layer has ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
    batch_first : bool, default False
        Inputs and outputs as ``(batch, seq_len, features)`` instead of ``(seq_len, batch, features)``.
    generator : torch.Generator, optional
        Draws the initial weights from ``U(-1/sqrt(hidden), 1/sqrt(hidden))``; default:
        PyTorch's global generator.
    device, dtype : optional
        Where and in which precision to create the parameters.

    Attributes
    ----------
    weight_ih_l{k}, weight_hh_l{k} : nn.Parameter
        ``(4 * hidden, input or hidden)`` and ``(4 * hidden, hidden)``; gates in the
        order input, forget, candidate, output.
    bias_ih_l{k}, bias_hh_l{k} : nn.Parameter
        ``(4 * hidden,)``.
    """

    n_gates = 4
    n_states = 2

    def _step(self, x_proj: torch.Tensor, state: list[torch.Tensor], w_hh: torch.Tensor, b_hh: torch.Tensor | None) -> list[torch.Tensor]:
        return list(lstm_cell(x_proj, state[0], state[1], w_hh, b_hh))

    def forward(
        self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the sequence.

        Parameters
        ----------
        input : torch.Tensor
            ``(seq_len, batch, input)``, or ``(batch, seq_len, input)`` with
            ``batch_first``, or unbatched ``(seq_len, input)``.
        hx : tuple of torch.Tensor, optional
            ``(h_0, c_0)``, each ``(num_layers, batch, hidden)`` (``(num_layers, hidden)``
            when unbatched); default zeros.

        Returns
        -------
        output : torch.Tensor
            The top layer's hidden state at every step, ``(seq_len, batch, hidden)``
            (or batch first, or unbatched, like the input).
        (h_n, c_n) : tuple of torch.Tensor
            The final states of every layer, ``(num_layers, batch, hidden)`` each.
        """
        states = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx must be a tuple (h_0, c_0) of tensors, got {type(hx).__name__}")
            batched = isinstance(input, torch.Tensor) and input.ndim == 3
            batch = input.shape[0 if self.batch_first else 1] if batched else 1
            states = [self._check_state(s, f"hx[{k}]", batch, batched) for k, s in enumerate(hx)]
        output, (h_n, c_n), _ = self._run(input, states)
        return output, (h_n, c_n)


class GRU(_RecurrentLayers):
    """A multi-layer GRU with PyTorch's interface (``torch.nn.GRU``, unidirectional).

    Parameters
    ----------
    input_size : int
        Features per time step.
    hidden_size : int
        Size of the hidden state.
    num_layers : int, default 1
        Stacked layers.
    bias : bool, default True
        Whether each layer has ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
    batch_first : bool, default False
        Inputs and outputs as ``(batch, seq_len, features)``.
    generator : torch.Generator, optional
        Draws the initial weights; default: PyTorch's global generator.
    device, dtype : optional
        Where and in which precision to create the parameters.

    Attributes
    ----------
    weight_ih_l{k}, weight_hh_l{k} : nn.Parameter
        ``(3 * hidden, input or hidden)`` and ``(3 * hidden, hidden)``; gates in the
        order reset, update, new.
    bias_ih_l{k}, bias_hh_l{k} : nn.Parameter
        ``(3 * hidden,)``.
    """

    n_gates = 3
    n_states = 1

    def _step(self, x_proj: torch.Tensor, state: list[torch.Tensor], w_hh: torch.Tensor, b_hh: torch.Tensor | None) -> list[torch.Tensor]:
        return [gru_cell(x_proj, state[0], w_hh, b_hh)]

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sequence.

        Parameters
        ----------
        input : torch.Tensor
            ``(seq_len, batch, input)``, or ``(batch, seq_len, input)`` with
            ``batch_first``, or unbatched ``(seq_len, input)``.
        hx : torch.Tensor, optional
            ``h_0``, ``(num_layers, batch, hidden)``; default zeros.

        Returns
        -------
        output : torch.Tensor
            The top layer's hidden state at every step, shaped like the input with
            ``hidden`` features.
        h_n : torch.Tensor
            The final hidden state of every layer, ``(num_layers, batch, hidden)``.
        """
        states = None
        if hx is not None:
            batched = isinstance(input, torch.Tensor) and input.ndim == 3
            batch = input.shape[0 if self.batch_first else 1] if batched else 1
            states = [self._check_state(hx, "hx", batch, batched)]
        output, (h_n,), _ = self._run(input, states)
        return output, h_n


def set_forget_bias(lstm: nn.Module, value: float) -> nn.Module:
    """Set every layer's forget-gate bias of an LSTM to `value` (in place).

    The forget gate's total bias is ``bias_ih + bias_hh``: its slice
    ``[hidden:2*hidden]`` of ``bias_ih_l{k}`` becomes `value` and that of
    ``bias_hh_l{k}`` zero. A positive value (1 in Gers et al. 2000 and Jozefowicz
    et al. 2015) starts the forget gate near ``sigmoid(value)`` so that the cell
    remembers by default. Works on :class:`LSTM` and ``torch.nn.LSTM`` alike.

    Parameters
    ----------
    lstm : LSTM or torch.nn.LSTM
        With biases.
    value : float
        The forget-gate bias.

    Returns
    -------
    The same module.
    """
    if not isinstance(lstm, (LSTM, nn.LSTM)):
        raise TypeError(f"lstm must be an LSTM or torch.nn.LSTM, got {type(lstm).__name__}")
    if not lstm.bias:
        raise ValueError("lstm must have biases (bias=True) to set the forget-gate bias")
    if not math.isfinite(float(value)):
        raise ValueError(f"value must be finite, got {value}")
    h = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            getattr(lstm, f"bias_ih_l{layer}")[h : 2 * h] = value
            getattr(lstm, f"bias_hh_l{layer}")[h : 2 * h] = 0.0
    return lstm


# --------------------------------------------------------------------------- attention
def causal_mask(seq_len: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(seq_len, seq_len)`` mask, True above the diagonal: query ``i`` may not see key ``j > i``.

    PyTorch's convention for a boolean ``attn_mask``/``src_mask``: True means *masked out*.
    """
    seq_len = _check_positive_int(seq_len, "seq_len")
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).triu(1)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d) + mask) v``, the whole attention matrix at once.

    Parameters
    ----------
    q, k, v : torch.Tensor
        ``(batch, heads, seq_len, head_dim)``.
    mask : torch.Tensor, optional
        Boolean (True = masked out) or additive float, broadcastable to
        ``(batch, heads, seq_len, seq_len)``. A query whose keys are all masked
        gets zero attention weights, and so a zero output, as in PyTorch.
    dropout : float, default 0.0
        Dropout on the attention weights, applied when `training`.
    training : bool, default False

    Returns
    -------
    torch.Tensor
        ``(batch, heads, seq_len, head_dim)``.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        # A query whose keys are all masked attends to nothing (weights 0), as in PyTorch, instead of
        # producing NaN; filling its scores first keeps NaN out of the backward pass too.
        nothing = torch.isneginf(scores).all(dim=-1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(nothing, 0.0), dim=-1).masked_fill(nothing, 0.0)
    weights = F.dropout(weights, dropout, training)
    return weights @ v


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with separate query, key and value projections.

    ``torch.nn.MultiheadAttention`` stores the three projections stacked in one
    ``in_proj_weight`` of shape ``(3 * embed_dim, embed_dim)``; here they are three
    ``nn.Linear`` layers (`q_proj`, `k_proj`, `v_proj`), which is what
    :meth:`TransformerEncoderBlock.from_torch` splits it into.

    Parameters
    ----------
    embed_dim : int
        Model width ``d_model``.
    num_heads : int
        Heads; must divide `embed_dim`.
    dropout : float, default 0.0
        Dropout on the attention weights.
    bias : bool, default True
        Biases in the four projections.
    device, dtype : optional
        Where and in which precision to create the parameters.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim = _check_positive_int(embed_dim, "embed_dim")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"num_heads must divide embed_dim, got embed_dim={embed_dim}, num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        kw = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend every position of `x` to every position allowed by `mask`.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, seq_len, embed_dim)``.
        mask : torch.Tensor, optional
            Boolean (True = masked out) or additive, broadcastable to
            ``(batch, heads, seq_len, seq_len)``.

        Returns
        -------
        torch.Tensor
            ``(batch, seq_len, embed_dim)``.
        """
        batch, seq_len, _ = x.shape
        split = lambda t: t.reshape(batch, seq_len, self.num_heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        heads = scaled_dot_product_attention(q, k, v, mask, self.dropout, self.training)
        return self.out_proj(heads.transpose(1, 2).reshape(batch, seq_len, self.embed_dim))


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderBlock(nn.Module):
    """A Transformer encoder block with PyTorch's interface (``torch.nn.TransformerEncoderLayer``).

    Post-norm (``norm_first=False``, the original paper)::

        x = norm1(x + dropout1(self_attn(x)))
        x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))

    Pre-norm (``norm_first=True``)::

        x = x + dropout1(self_attn(norm1(x)))
        x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))

    Parameters
    ----------
    d_model : int
        Model width.
    nhead : int
        Attention heads; must divide `d_model`.
    dim_feedforward : int, default 2048
        Hidden width of the feed-forward network.
    dropout : float, default 0.0
        Dropout on the attention weights and after each sublayer (PyTorch's default is 0.1).
    activation : {"relu", "gelu"}, default "relu"
        The feed-forward nonlinearity.
    layer_norm_eps : float, default 1e-5
    batch_first : bool, default True
        ``(batch, seq_len, d_model)`` tensors; False for ``(seq_len, batch, d_model)``.
    norm_first : bool, default False
        Pre-norm instead of post-norm.
    bias : bool, default True
        Biases in the linear layers and layer norms.
    device, dtype : optional
        Where and in which precision to create the parameters.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.0,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        norm_first: bool = False,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        kw = {"device": device, "dtype": dtype}
        self.d_model = _check_positive_int(d_model, "d_model")
        self.nhead = nhead
        self.activation_name = activation
        self.activation = _ACTIVATIONS[activation]
        self.batch_first = bool(batch_first)
        self.norm_first = bool(norm_first)
        self.self_attn = MultiHeadSelfAttention(d_model, nhead, dropout, bias, **kw)
        self.linear1 = nn.Linear(d_model, _check_positive_int(dim_feedforward, "dim_feedforward"), bias, **kw)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias, **kw)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerEncoderBlock:
        """A block with the configuration and a copy of the weights of a ``torch.nn.TransformerEncoderLayer``.

        PyTorch keeps the query, key and value projections stacked in
        ``self_attn.in_proj_weight`` ``(3 * d_model, d_model)`` (and ``in_proj_bias``);
        they are split, in that order, into ``q_proj``, ``k_proj`` and ``v_proj``.

        Raises
        ------
        TypeError
            If `layer` is not a ``TransformerEncoderLayer``.
        ValueError
            If its activation is neither ReLU nor GELU, or its attention has separate
            key/value sizes.
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"layer must be a torch.nn.TransformerEncoderLayer, got {type(layer).__name__}")
        act = layer.activation
        if act is F.relu or isinstance(act, nn.ReLU):
            activation = "relu"
        elif act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
            activation = "gelu"
        else:
            raise ValueError(f"layer's activation must be ReLU or GELU, got {act!r}")
        attn = layer.self_attn
        if not attn._qkv_same_embed_dim:
            raise ValueError("layer's attention must have kdim == vdim == embed_dim")
        has_bias = layer.linear1.bias is not None
        p = layer.linear1.weight
        block = cls(
            attn.embed_dim, attn.num_heads, layer.linear1.out_features, layer.dropout.p, activation,
            layer.norm1.eps, layer.self_attn.batch_first, layer.norm_first, has_bias, device=p.device, dtype=p.dtype,
        )
        state = {k: v for k, v in layer.state_dict().items() if not k.startswith("self_attn.in_proj")}
        for name, tensor in zip(("q_proj", "k_proj", "v_proj"), attn.in_proj_weight.chunk(3, dim=0)):
            state[f"self_attn.{name}.weight"] = tensor
        if attn.in_proj_bias is not None:
            for name, tensor in zip(("q_proj", "k_proj", "v_proj"), attn.in_proj_bias.chunk(3, dim=0)):
                state[f"self_attn.{name}.bias"] = tensor
        block.load_state_dict(state)
        return block

    def _attention_mask(
        self, x: torch.Tensor, src_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, is_causal: bool
    ) -> torch.Tensor | None:
        """Merge the masks into one additive ``(batch, 1, seq_len, seq_len)`` float mask (or None)."""
        batch, seq_len, _ = x.shape
        if is_causal and src_mask is None:
            src_mask = causal_mask(seq_len, device=x.device)
        mask = None
        for name, m, shape in (("src_mask", src_mask, (seq_len, seq_len)), ("src_key_padding_mask", key_padding_mask, (batch, seq_len))):
            if m is None:
                continue
            if not isinstance(m, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(m).__name__}")
            if tuple(m.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(m.shape)}")
            if m.dtype == torch.bool:
                m = torch.zeros(m.shape, dtype=x.dtype, device=x.device).masked_fill(m, float("-inf"))
            elif not m.is_floating_point():
                raise TypeError(f"{name} must be a boolean or floating-point tensor, got dtype {m.dtype}")
            m = m.to(x.dtype)
            m = m[None, None] if name == "src_mask" else m[:, None, None, :]
            mask = m if mask is None else mask + m
        return mask

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """Apply the block.

        Parameters
        ----------
        src : torch.Tensor
            ``(batch, seq_len, d_model)`` (``(seq_len, batch, d_model)`` without
            ``batch_first``), or unbatched ``(seq_len, d_model)``.
        src_mask : torch.Tensor, optional
            ``(seq_len, seq_len)``, boolean (True = query ``i`` may not attend to key ``j``)
            or additive float, as PyTorch takes it.
        src_key_padding_mask : torch.Tensor, optional
            ``(batch, seq_len)``, boolean (True = padding, attended by no query) or additive.
        is_causal : bool, default False
            Use the causal mask; unlike PyTorch (where it is only a hint that
            `src_mask` is causal) it builds the mask when `src_mask` is None.

        Returns
        -------
        torch.Tensor
            Shaped like `src`.
        """
        x = _check_input(src, "src", self.d_model)
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(0)
            if src_key_padding_mask is not None and src_key_padding_mask.ndim == 1:
                src_key_padding_mask = src_key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            x = x.transpose(0, 1)
        mask = self._attention_mask(x, src_mask, src_key_padding_mask, is_causal)
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), mask))
            x = x + self._feed_forward(self.norm2(x))
        else:
            x = self.norm1(x + self.dropout1(self.self_attn(x, mask)))
            x = self.norm2(x + self._feed_forward(x))
        if not batched:
            return x.squeeze(0)
        return x if self.batch_first else x.transpose(0, 1)

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


# --------------------------------------------------------------------------- the long-lag task
class SequenceRegressor(nn.Module):
    """A recurrent core and a linear read-out of its last output: ``y = w . h_T + b``.

    Parameters
    ----------
    core : nn.Module
        A batch-first recurrence with PyTorch's interface, ``core(x) -> (output, state)``
        with ``output`` of shape ``(batch, seq_len, hidden)``: :class:`LSTM`, :class:`GRU`,
        ``torch.nn.RNN`` and the like.
    hidden_size : int
        The core's output width.
    generator : torch.Generator, optional
        Draws the read-out's initial weights, ``U(-1/sqrt(hidden), 1/sqrt(hidden))`` as
        ``torch.nn.Linear`` does; a fresh ``torch.Generator().manual_seed(0)`` when None,
        so that the global random state is never used.
    """

    def __init__(self, core: nn.Module, hidden_size: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(core, nn.Module):
            raise TypeError(f"core must be a torch.nn.Module, got {type(core).__name__}")
        if not getattr(core, "batch_first", True):
            raise ValueError("core must be batch_first")
        self.core = core
        p = next(core.parameters())
        self.readout = nn.Linear(_check_positive_int(hidden_size, "hidden_size"), 1, device=p.device, dtype=p.dtype)
        generator = torch.Generator().manual_seed(0) if generator is None else generator
        bound = 1.0 / math.sqrt(hidden_size)
        with torch.no_grad():
            for param in (self.readout.weight, self.readout.bias):
                param.copy_(torch.empty(param.shape, dtype=param.dtype).uniform_(-bound, bound, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(batch, seq_len, features)`` to predictions of shape ``(batch,)``."""
        output, _ = self.core(x)
        return self.readout(output[:, -1]).squeeze(-1)


@dataclass
class AddingProblemConfig:
    """Hyperparameters of :func:`train_adding_problem`.

    Attributes
    ----------
    seq_len : int
        Length ``T`` of the sequences; the first marked value is up to ``T - 1`` steps back.
    hidden_size : int
        Width of the recurrent core (the caller builds the core; this sizes the read-out).
    n_train : int
        Training sequences, drawn once.
    n_test : int
        Held-out sequences for the test mean squared error.
    epochs : int
        Passes over the training sequences.
    batch_size : int
        Sequences per Adam step.
    lr : float
        Adam's learning rate.
    clip_grad_norm : float
        The gradients' global norm is clipped to this before each step (recurrent
        gradients can explode).
    """

    seq_len: int = 50
    hidden_size: int = 32
    n_train: int = 4096
    n_test: int = 1000
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-2
    clip_grad_norm: float = 1.0


@dataclass
class AddingProblemResult:
    """What :func:`train_adding_problem` returns.

    Attributes
    ----------
    model : SequenceRegressor
        The trained model.
    step_loss : list of float
        Training MSE of every step.
    test_mse : list of float
        Held-out MSE before training and after each epoch (``epochs + 1`` values).
    baseline_mse : float
        Held-out MSE of always predicting the mean target 1 (about 1/6).
    """

    model: SequenceRegressor
    step_loss: list[float] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)
    baseline_mse: float = float("nan")


def train_adding_problem(core: nn.Module, config: AddingProblemConfig, *, rng: np.random.Generator | int) -> AddingProblemResult:
    """Train ``SequenceRegressor(core)`` on the adding problem by Adam on the mean squared error.

    Data come from :func:`mlnotes.datasets.adding_problem` (training and test sets from
    `rng`); the loop is :func:`mlnotes.training.train`.

    Parameters
    ----------
    core : nn.Module
        A batch-first recurrent core with ``config.hidden_size`` outputs and 2 inputs,
        already initialised; trained in place, on its device.
    config : AddingProblemConfig
    rng : numpy.random.Generator or int
        Draws the data and the batch order.

    Returns
    -------
    AddingProblemResult

    Raises
    ------
    TypeError
        If `config` is not an :class:`AddingProblemConfig`.
    ValueError
        If a field of `config` is out of range.
    """
    from mlnotes.datasets import adding_problem
    from mlnotes.training import train

    if not isinstance(config, AddingProblemConfig):
        raise TypeError(f"config must be an AddingProblemConfig, got {type(config).__name__}")
    for name in ("seq_len", "hidden_size", "n_train", "n_test", "epochs", "batch_size"):
        _check_positive_int(getattr(config, name), f"config.{name}")
    if not config.lr > 0 or not config.clip_grad_norm > 0:
        raise ValueError(f"config.lr and config.clip_grad_norm must be > 0, got {config.lr} and {config.clip_grad_norm}")
    rng = as_generator(rng)
    model = SequenceRegressor(core, config.hidden_size, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
    p = next(model.parameters())
    tensors = lambda d: (torch.as_tensor(d.X, dtype=p.dtype, device=p.device), torch.as_tensor(d.y, dtype=p.dtype, device=p.device))  # noqa: E731
    X_train, y_train = tensors(adding_problem(config.n_train, config.seq_len, rng=rng))
    X_test, y_test = tensors(adding_problem(config.n_test, config.seq_len, rng=rng))

    def test_mse(m: nn.Module) -> dict[str, float]:
        return {"test_mse": float(F.mse_loss(m(X_test), y_test))}

    model.eval()
    with torch.no_grad():
        before = test_mse(model)["test_mse"]
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    history = train(
        model, lambda m, x, y: F.mse_loss(m(x), y), (X_train, y_train), epochs=config.epochs, lr=config.lr,
        batch_size=config.batch_size, generator=generator, clip_grad_norm=config.clip_grad_norm, eval_fn=test_mse, progress=False,
    )
    baseline = float(F.mse_loss(torch.ones_like(y_test), y_test))
    return AddingProblemResult(model, history["step_loss"], [before] + history["test_mse"], baseline)


# --------------------------------------------------------------------------- gradient flow and parallelism
def input_gradient_norms(core: nn.Module, x: torch.Tensor) -> np.ndarray:
    """How strongly the last hidden state depends on each input: ``||d h_T / d x_t||`` for every ``t``.

    The Jacobian of the top layer's final output ``h_T`` (``hidden`` values) with
    respect to the input at step ``t`` (``features`` values), in Frobenius norm,
    averaged over the batch. One backward pass per hidden unit (the samples of a
    batch are independent, so one pass gives every sample's row at once).

    Parameters
    ----------
    core : nn.Module
        Batch-first recurrence, ``core(x) -> (output, state)``, ``output`` of shape
        ``(batch, seq_len, hidden)``.
    x : torch.Tensor
        ``(batch, seq_len, features)``.

    Returns
    -------
    numpy.ndarray
        ``(seq_len,)``: entry ``t`` is the mean over the batch of ``||d h_T / d x_t||_F``;
        the lag is ``seq_len - 1 - t``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or not x.is_floating_point():
        raise ValueError(f"x must be a floating tensor of shape (batch, seq_len, features), got {getattr(x, 'shape', type(x).__name__)}")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        h_last = core(x)[0][:, -1]
        squares = torch.zeros(x.shape[:2], dtype=torch.float64, device=x.device)
        for j in range(h_last.shape[-1]):
            (grad,) = torch.autograd.grad(h_last[:, j].sum(), x, retain_graph=j + 1 < h_last.shape[-1])
            squares += grad.double().pow(2).sum(-1)
    return squares.sqrt().mean(0).cpu().numpy()


def critical_path_length(output: torch.Tensor) -> int:
    """The number of operations on the longest chain of the autograd graph that produced `output`.

    Every operation on such a chain needs the result of the one before it, so no
    amount of hardware can run the computation in fewer sequential steps: it is the
    depth of the computation, a lower bound on its parallel running time. Leaves
    (parameters, inputs) count zero.

    Parameters
    ----------
    output : torch.Tensor
        A tensor computed with gradients enabled from inputs or parameters that require them.

    Returns
    -------
    int
    """
    if not isinstance(output, torch.Tensor) or output.grad_fn is None:
        raise ValueError("output must be a tensor with a grad_fn (computed with gradients from inputs that require them)")
    depth: dict[object, int] = {}
    stack: list[tuple[object, bool]] = [(output.grad_fn, False)]
    while stack:  # iterative post-order: graphs of long recurrences are deeper than Python's recursion limit
        node, expanded = stack.pop()
        if node in depth:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if expanded:
            leaf = type(node).__name__ == "AccumulateGrad"
            depth[node] = 0 if leaf else 1 + max((depth[c] for c in children), default=0)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if c not in depth)
    return depth[output.grad_fn]


def forward_time(module: nn.Module, x: torch.Tensor, *, repeats: int = 3) -> float:
    """The fastest of `repeats` wall-clock times of ``module(x)`` without gradients, in seconds.

    Parameters
    ----------
    module : nn.Module
    x : torch.Tensor
        Its input.
    repeats : int, default 3

    Returns
    -------
    float
    """
    repeats = _check_positive_int(repeats, "repeats")
    best = math.inf
    with torch.no_grad():
        module(x)  # warm-up
        for _ in range(repeats):
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            module(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------- exercises


def check_exercise_1(answer: int) -> bool:
    """Exercise 1: the number of parameters of ``LSTM(input_size=10, hidden_size=20)`` (one layer, biases)."""
    expected = sum(p.numel() for p in LSTM(10, 20, generator=torch.Generator().manual_seed(0)).parameters())
    value = _as_float(answer)
    return _report(
        value == expected,
        f"Correct: 4 gates x (20 x 10 + 20 x 20 + 20 + 20) = {expected}.",
        "Not yet: each of the 4 gates has an input matrix (hidden x input), a recurrent matrix (hidden x hidden) and two bias vectors.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: a forget gate held at 0.9 scales the cell-path gradient over 50 steps by what factor?"""
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, 0.9**50, rel_tol=1e-3),
        f"Correct: d c_T / d c_t = prod of the forget gates = 0.9^50, about {0.9**50:.4f}.",
        "Not yet: along the cell path, d c_{t+1} / d c_t is the forget gate; multiply it over the lag.",
    )


def check_exercise_3(answer: int) -> bool:
    """Exercise 3: attention operations on the shortest path from input 1 to output 1000 in a 6-layer Transformer encoder."""
    value = _as_float(answer)
    return _report(
        value == 6,
        "Correct: 6, one attention hop per layer, whatever the distance; an LSTM needs 999 steps.",
        "Not yet: in one attention layer every position reads every other position directly.",
    )
