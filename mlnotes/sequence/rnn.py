"""Elman recurrent networks from scratch, backpropagation through time by hand, and why gradients vanish.

Implements the simple recurrent network of Elman, "Finding Structure in Time"
(Cognitive Science, 1990), ``h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, as a
cell and as a multi-layer module whose parameters are named, shaped and
initialised like ``torch.nn.RNN``'s (so weights copy over in both directions);
backpropagation through time (Werbos, "Backpropagation Through Time: What It Does
and How to Do It", Proc. IEEE 1990) written out as an explicit backward recursion;
the Jacobian-product analysis of vanishing and exploding gradients (Bengio, Simard
and Frasconi, IEEE TNN 1994; Pascanu, Mikolov and Bengio, ICML 2013) with the
bound ``||dh_T/dh_t|| <= (sigma_max(W_hh) * max|f'|)^(T-t)``; gradient clipping by
norm (Pascanu et al. 2013); and the adding problem (Hochreiter and Schmidhuber
1997) at a short lag as a sequence task a plain RNN learns.

The chapter is ``book/sequence/rnn.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "Nonlinearity",
    "rnn_cell",
    "RNNCell",
    "RNN",
    "BPTTGradients",
    "bptt",
    "spectral_radius",
    "recurrent_matrix",
    "GradientFlow",
    "gradient_flow",
    "clip_grad_norm",
    "AddingConfig",
    "AddingResult",
    "RNNRegressor",
    "train_adding_problem",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]

Nonlinearity = Literal["tanh", "relu"]
_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


# --------------------------------------------------------------------------- validation helpers
def _check_size(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_nonlinearity(value: object, name: str = "nonlinearity", *, allowed: tuple[str, ...] = ("tanh", "relu")) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return str(value)


def _check_tensor(value: object, name: str, shape: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def _init_uniform(params: Iterable[torch.Tensor], hidden_size: int, generator: torch.Generator | None) -> None:
    """torch.nn.RNN's initialisation: every weight and bias from U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound, generator=generator)


def _as_torch_generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, a torch.Generator or None, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def _as_cpu_generator(generator: object) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)) or generator < 0:
        raise TypeError(f"generator must be a torch.Generator or a non-negative int seed, got {generator!r}")
    return torch.Generator().manual_seed(int(generator))


# --------------------------------------------------------------------------- the cell
def rnn_cell(
    x: torch.Tensor,
    h: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None = None,
    bias_hh: torch.Tensor | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> torch.Tensor:
    r"""One step of an Elman RNN: ``h' = f(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Parameters
    ----------
    x : torch.Tensor, shape (batch, input_size)
        The input at this step.
    h : torch.Tensor, shape (batch, hidden_size)
        The previous hidden state.
    weight_ih : torch.Tensor, shape (hidden_size, input_size)
    weight_hh : torch.Tensor, shape (hidden_size, hidden_size)
    bias_ih, bias_hh : torch.Tensor, shape (hidden_size,), optional
    nonlinearity : {"tanh", "relu"}, default "tanh"

    Returns
    -------
    torch.Tensor, shape (batch, hidden_size)
        The new hidden state.
    """
    return _ACTIVATIONS[nonlinearity](F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))


class RNNCell(nn.Module):
    """A single Elman RNN cell with ``torch.nn.RNNCell``'s parameters and forward.

    Parameters
    ----------
    input_size, hidden_size : int
        Sizes of the input and of the hidden state.
    bias : bool, default True
        Whether to learn the biases ``bias_ih`` and ``bias_hh``.
    nonlinearity : {"tanh", "relu"}, default "tanh"
    device, dtype : optional
        Where and in which floating-point type to create the parameters.
    seed : int or torch.Generator, optional
        Randomness of the initialisation ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``;
        default PyTorch's global generator, as ``torch.nn.RNNCell`` does.

    Attributes
    ----------
    weight_ih : Parameter, shape (hidden_size, input_size)
    weight_hh : Parameter, shape (hidden_size, hidden_size)
    bias_ih, bias_hh : Parameter, shape (hidden_size,), or None without bias
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: Nonlinearity = "tanh",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.input_size = _check_size(input_size, "input_size")
        self.hidden_size = _check_size(hidden_size, "hidden_size")
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self.bias = bool(bias)
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, **factory))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _init_uniform(self.parameters(), self.hidden_size, _as_torch_generator(seed))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """One step: `x` of shape (batch, input_size) or (input_size,), `h` like the result (zeros if None)."""
        x = _check_tensor(x, "x", "(batch, input_size)")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"x must have shape (batch, {self.input_size}) or ({self.input_size},), got {tuple(x.shape)}")
        unbatched = x.ndim == 1
        if unbatched:
            x = x.unsqueeze(0)
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            h = _check_tensor(h, "h", "(batch, hidden_size)")
            h = h.unsqueeze(0) if unbatched else h
            if tuple(h.shape) != (x.shape[0], self.hidden_size):
                raise ValueError(f"h must have shape {(x.shape[0], self.hidden_size)}, got {tuple(h.shape)}")
        out = rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)  # type: ignore[arg-type]
        return out.squeeze(0) if unbatched else out

    @classmethod
    def from_torch(cls, module: nn.RNNCell) -> RNNCell:
        """A cell with the sizes, nonlinearity and (copied) weights of a ``torch.nn.RNNCell``."""
        if not isinstance(module, nn.RNNCell):
            raise TypeError(f"module must be a torch.nn.RNNCell, got {type(module).__name__}")
        ref = next(module.parameters())
        cell = cls(module.input_size, module.hidden_size, module.bias, module.nonlinearity, device=ref.device, dtype=ref.dtype)  # type: ignore[arg-type]
        cell.load_state_dict(module.state_dict())
        return cell

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}, nonlinearity={self.nonlinearity!r}"


# --------------------------------------------------------------------------- the multi-layer module
class RNN(nn.Module):
    r"""A multi-layer Elman RNN with ``torch.nn.RNN``'s constructor, parameters and forward.

    Layer ``l`` computes, for ``t = 1, ..., T``,

    .. math:: h^{(l)}_t = f\big(W^{(l)}_{ih} h^{(l-1)}_t + b^{(l)}_{ih} + W^{(l)}_{hh} h^{(l)}_{t-1} + b^{(l)}_{hh}\big),
              \qquad h^{(0)}_t = x_t .

    Parameters
    ----------
    input_size : int
        Features per input step.
    hidden_size : int
        Features of the hidden state of every layer.
    num_layers : int, default 1
        Stacked layers; layer ``l > 0`` reads the outputs of layer ``l - 1``.
    nonlinearity : {"tanh", "relu"}, default "tanh"
    bias : bool, default True
        Whether to learn the biases.
    batch_first : bool, default False
        Inputs and outputs are (batch, seq_len, feature) instead of (seq_len, batch, feature);
        the hidden states are (num_layers, batch, hidden_size) either way, as in torch.
    device, dtype : optional
        Where and in which floating-point type to create the parameters.
    seed : int or torch.Generator, optional
        Randomness of the initialisation ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``
        of every parameter; default PyTorch's global generator, as ``torch.nn.RNN``.

    Attributes
    ----------
    weight_ih_l{k} : Parameter, shape (hidden_size, input_size) for k = 0, else (hidden_size, hidden_size)
    weight_hh_l{k} : Parameter, shape (hidden_size, hidden_size)
    bias_ih_l{k}, bias_hh_l{k} : Parameter, shape (hidden_size,) (when `bias`)

    Notes
    -----
    Bidirectional layers, dropout between layers and ``proj_size`` are not implemented.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Nonlinearity = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.input_size = _check_size(input_size, "input_size")
        self.hidden_size = _check_size(hidden_size, "hidden_size")
        self.num_layers = _check_size(num_layers, "num_layers")
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        factory = {"device": device, "dtype": dtype}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size
            setattr(self, f"weight_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, layer_input, **factory)))
            setattr(self, f"weight_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, hidden_size, **factory)))
            if self.bias:
                setattr(self, f"bias_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, **factory)))
                setattr(self, f"bias_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, **factory)))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | torch.Generator | None = None) -> None:
        """Draw every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``, as torch does."""
        _init_uniform(self.parameters(), self.hidden_size, _as_torch_generator(seed))

    def layer_parameters(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer (biases None without bias)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(getattr(self, f"{name}_l{layer}", None) for name in names)  # type: ignore[return-value]

    def _check_input(self, x: object, h0: object) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        layout = "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        x = _check_tensor(x, "x", layout)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"x must have shape {layout} or (seq_len, input_size) with input_size={self.input_size}, got {tuple(x.shape)}"
            )
        if x.numel() == 0:
            raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(0 if self.batch_first else 1)
        batch = x.shape[0] if self.batch_first else x.shape[1]
        if h0 is not None:
            h0 = _check_tensor(h0, "h0", "(num_layers, batch, hidden_size)")
            if unbatched:
                h0 = h0.unsqueeze(1)
            if tuple(h0.shape) != (self.num_layers, batch, self.hidden_size):
                expected = (self.num_layers, self.hidden_size) if unbatched else (self.num_layers, batch, self.hidden_size)
                got = tuple(h0.shape[:1] + h0.shape[2:]) if unbatched else tuple(h0.shape)
                raise ValueError(f"h0 must have shape {expected}, got {got}")
        return x, h0, unbatched  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network over a sequence.

        Parameters
        ----------
        x : torch.Tensor, shape (seq_len, batch, input_size), (batch, seq_len, input_size) if batch_first, or (seq_len, input_size)
            The input sequence(s).
        h0 : torch.Tensor, shape (num_layers, batch, hidden_size) or (num_layers, hidden_size), optional
            Initial hidden state of every layer; zeros when omitted.

        Returns
        -------
        output : torch.Tensor, shape (seq_len, batch, hidden_size) or (batch, seq_len, hidden_size) if batch_first
            The last layer's hidden state at every step.
        h_n : torch.Tensor, shape (num_layers, batch, hidden_size)
            Every layer's hidden state after the last step.

        Raises
        ------
        TypeError
            If `x` or `h0` is not a floating-point tensor.
        ValueError
            If a shape does not match, or `x` is empty.
        """
        x, h0, unbatched = self._check_input(x, h0)
        if self.batch_first:
            x = x.transpose(0, 1)  # time-major inside: one step is x[t]
        activation = _ACTIVATIONS[self.nonlinearity]
        layer_input, last_states = x, []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(layer)
            # The input projection of all steps at once: only the recurrence must run step by step.
            projected = F.linear(layer_input, weight_ih, bias_ih)
            h = projected.new_zeros(projected.shape[1:]) if h0 is None else h0[layer]
            steps = []
            for t in range(projected.shape[0]):
                h = activation(projected[t] + F.linear(h, weight_hh, bias_hh))
                steps.append(h)
            layer_input = torch.stack(steps)
            last_states.append(h)
        output, h_n = layer_input, torch.stack(last_states)
        if self.batch_first:
            output = output.transpose(0, 1)
        if unbatched:
            output, h_n = output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
        return output, h_n

    def load_torch_weights(self, module: nn.RNN) -> RNN:
        """Copy the weights of a ``torch.nn.RNN`` of the same configuration into this module (in place).

        Raises
        ------
        TypeError
            If `module` is not a ``torch.nn.RNN``.
        ValueError
            If its configuration differs, or it is bidirectional, projects, or uses dropout.
        """
        if not isinstance(module, nn.RNN):
            raise TypeError(f"module must be a torch.nn.RNN, got {type(module).__name__}")
        if module.bidirectional or getattr(module, "proj_size", 0) or module.dropout:
            raise ValueError("module must be unidirectional, without proj_size and without dropout: those are not implemented here")
        ours = (self.input_size, self.hidden_size, self.num_layers, self.nonlinearity, self.bias)
        theirs = (module.input_size, module.hidden_size, module.num_layers, module.nonlinearity, module.bias)
        if ours != theirs:
            raise ValueError(
                f"module must have (input_size, hidden_size, num_layers, nonlinearity, bias) = {ours}, got {theirs}"
            )
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(getattr(module, name))
        return self

    @classmethod
    def from_torch(cls, module: nn.RNN) -> RNN:
        """A new RNN with the configuration, device, dtype and copied weights of a ``torch.nn.RNN``."""
        if not isinstance(module, nn.RNN):
            raise TypeError(f"module must be a torch.nn.RNN, got {type(module).__name__}")
        ref = next(module.parameters())
        rnn = cls(
            module.input_size, module.hidden_size, module.num_layers, module.nonlinearity,  # type: ignore[arg-type]
            module.bias, module.batch_first, device=ref.device, dtype=ref.dtype,
        )
        return rnn.load_torch_weights(module)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"nonlinearity={self.nonlinearity!r}, bias={self.bias}, batch_first={self.batch_first}"
        )


# --------------------------------------------------------------------------- BPTT by hand
@dataclass
class BPTTGradients:
    """Gradients of a loss with respect to a one-layer tanh RNN, computed by :func:`bptt`.

    Attributes
    ----------
    params : dict of str to torch.Tensor
        ``dL/dparameter`` keyed by the RNN's parameter names (``weight_ih_l0``, ...),
        each of the parameter's shape.
    h0 : torch.Tensor, shape (batch, hidden_size)
        ``dL/dh_0``.
    hidden : torch.Tensor, shape (seq_len, batch, hidden_size)
        The total derivative ``dL/dh_t`` at every step (time-major), the quantity whose
        norm vanishes or explodes with the lag.
    """

    params: dict[str, torch.Tensor]
    h0: torch.Tensor
    hidden: torch.Tensor


def bptt(rnn: RNN, x: torch.Tensor, grad_output: torch.Tensor, h0: torch.Tensor | None = None) -> BPTTGradients:
    r"""Backpropagation through time, by hand, for a one-layer tanh :class:`RNN`.

    For a loss ``L`` whose derivative with respect to the outputs ``h_t`` (holding the
    other outputs fixed) is ``grad_output[t]``, the backward recursion is

    .. math::
        g_T = \partial L / \partial h_T, \quad
        \delta_t = g_t \odot (1 - h_t^2), \quad
        g_{t-1} = \partial L / \partial h_{t-1} + W_{hh}^\top \delta_t ,

    and the parameter gradients sum over time: ``dW_ih = sum_t delta_t x_t^T``,
    ``dW_hh = sum_t delta_t h_{t-1}^T``, ``db_ih = db_hh = sum_t delta_t``, ``dh_0 = W_hh^T delta_1``.

    Parameters
    ----------
    rnn : RNN
        A one-layer RNN with ``nonlinearity="tanh"``.
    x : torch.Tensor, shape (seq_len, batch, input_size), or (batch, seq_len, input_size) if ``rnn.batch_first``
        The input sequences.
    grad_output : torch.Tensor, the shape of ``rnn(x)[0]``
        ``dL/d output`` (what ``output.backward(grad_output)`` would receive).
    h0 : torch.Tensor, shape (1, batch, hidden_size), optional
        The initial state; zeros when omitted.

    Returns
    -------
    BPTTGradients

    Raises
    ------
    TypeError
        If `rnn` is not an :class:`RNN` or a tensor argument is not a floating-point tensor.
    ValueError
        If the RNN is not a one-layer tanh RNN, a shape does not match, or an input is not finite.
    """
    if not isinstance(rnn, RNN):
        raise TypeError(f"rnn must be an mlnotes RNN, got {type(rnn).__name__}")
    if rnn.num_layers != 1 or rnn.nonlinearity != "tanh":
        raise ValueError(
            f"rnn must be a one-layer tanh RNN, got num_layers={rnn.num_layers}, nonlinearity={rnn.nonlinearity!r}"
        )
    x, h0, unbatched = rnn._check_input(x, h0)
    if unbatched:
        raise ValueError("x must be batched: (seq_len, batch, input_size), or (batch, seq_len, input_size) if batch_first")
    grad_output = _check_tensor(grad_output, "grad_output", "like the RNN's output")
    if grad_output.shape != x.shape[:-1] + (rnn.hidden_size,):
        raise ValueError(f"grad_output must have shape {tuple(x.shape[:-1]) + (rnn.hidden_size,)}, got {tuple(grad_output.shape)}")
    for name, value in (("x", x), ("grad_output", grad_output), ("h0", h0)):
        if value is not None and not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got NaN or infinite values")
    if rnn.batch_first:
        x, grad_output = x.transpose(0, 1), grad_output.transpose(0, 1)
    weight_ih, weight_hh, bias_ih, bias_hh = (None if p is None else p.detach() for p in rnn.layer_parameters(0))
    x = x.detach()
    seq_len, batch = x.shape[:2]

    # Forward pass, keeping every state: BPTT needs h_0, ..., h_T.
    with torch.no_grad():
        h = x.new_zeros(batch, rnn.hidden_size) if h0 is None else h0[0].detach()
        states = [h]
        for t in range(seq_len):
            h = rnn_cell(x[t], h, weight_ih, weight_hh, bias_ih, bias_hh, "tanh")  # type: ignore[arg-type]
            states.append(h)

        grad_w_ih, grad_w_hh = torch.zeros_like(weight_ih), torch.zeros_like(weight_hh)  # type: ignore[arg-type]
        grad_b = x.new_zeros(rnn.hidden_size)
        hidden = torch.empty_like(grad_output)
        carry = x.new_zeros(batch, rnn.hidden_size)  # W_hh^T delta_{t+1}: what step t+1 sends back to h_t
        for t in range(seq_len - 1, -1, -1):
            g = grad_output[t] + carry  # total dL/dh_t
            hidden[t] = g
            delta = g * (1.0 - states[t + 1] ** 2)  # through tanh: tanh'(a) = 1 - tanh(a)^2
            grad_w_ih += delta.T @ x[t]
            grad_w_hh += delta.T @ states[t]
            grad_b += delta.sum(dim=0)
            carry = delta @ weight_hh  # (W_hh^T delta^T)^T for row-vector states
    params = {"weight_ih_l0": grad_w_ih, "weight_hh_l0": grad_w_hh}
    if rnn.bias:
        params["bias_ih_l0"] = grad_b
        params["bias_hh_l0"] = grad_b.clone()
    return BPTTGradients(params=params, h0=carry, hidden=hidden)


# --------------------------------------------------------------------------- vanishing and exploding gradients
def spectral_radius(matrix: torch.Tensor) -> float:
    """The largest absolute eigenvalue of a square matrix.

    Parameters
    ----------
    matrix : torch.Tensor, shape (n, n)

    Returns
    -------
    float
    """
    matrix = _check_tensor(matrix, "matrix", "(n, n)")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be square and non-empty, got shape {tuple(matrix.shape)}")
    return float(torch.linalg.eigvals(matrix.detach().double()).abs().max())


def recurrent_matrix(
    hidden_size: int,
    radius: float,
    *,
    kind: Literal["orthogonal", "gaussian"] = "orthogonal",
    generator: torch.Generator | int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A random recurrent matrix rescaled to spectral radius `radius`.

    ``"orthogonal"``: ``radius * Q`` for a random orthogonal ``Q``; every eigenvalue and every
    singular value then has modulus `radius`, so ``||W^k v|| = radius^k ||v||`` exactly.
    ``"gaussian"``: i.i.d. normal entries rescaled by their spectral radius; the matrix is
    not normal, its spectral norm is about twice its spectral radius, and
    ``||W^k||`` approaches ``radius^k`` only asymptotically.

    Parameters
    ----------
    hidden_size : int
    radius : float
        The spectral radius, > 0.
    kind : {"orthogonal", "gaussian"}, default "orthogonal"
    generator : torch.Generator or int, default 0
        Randomness (a CPU generator or a seed).
    dtype, device : optional
        Of the result.

    Returns
    -------
    torch.Tensor, shape (hidden_size, hidden_size)
    """
    hidden_size = _check_size(hidden_size, "hidden_size")
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (radius > 0 and math.isfinite(radius)):
        raise ValueError(f"radius must be a positive finite float, got {radius!r}")
    _check_nonlinearity(kind, "kind", allowed=("orthogonal", "gaussian"))
    gen = _as_cpu_generator(generator)
    gaussian = torch.randn(hidden_size, hidden_size, generator=gen, dtype=torch.float64)
    if kind == "orthogonal":
        q, r = torch.linalg.qr(gaussian)
        base = q * torch.sign(torch.diagonal(r))  # Haar-distributed orthogonal matrix
    else:
        base = gaussian / spectral_radius(gaussian)
    return (radius * base).to(dtype=dtype, device=device)


@dataclass
class GradientFlow:
    """How a gradient propagates back through time in a one-layer RNN (from :func:`gradient_flow`).

    Index ``k`` is the lag: the gradient sent from step ``T`` back to step ``T - k``.

    Attributes
    ----------
    lags : numpy.ndarray, shape (seq_len + 1,)
        ``0, 1, ..., seq_len``.
    grad_norms : numpy.ndarray, shape (seq_len + 1,)
        Mean over the batch of ``||dL/dh_{T-k}||`` for ``L = <u, h_T>`` with a unit vector ``u``
        (so ``grad_norms[0] == 1``); ``k = seq_len`` is ``dL/dh_0``.
    jacobian_norms : numpy.ndarray, shape (batch, seq_len + 1)
        Spectral norm of the Jacobian product ``dh_T/dh_{T-k} = J_T ... J_{T-k+1}`` of every sequence.
    bounds : numpy.ndarray, shape (batch, seq_len + 1)
        ``(sigma_max(W_hh) * max_t |f'(a_t)|)^k`` per sequence, the bound on `jacobian_norms`.
    max_derivative : numpy.ndarray, shape (batch,)
        ``max_t max_i |f'(a_{t,i})|`` of every sequence (at most 1 for tanh).
    spectral_norm : float
        ``sigma_max(W_hh)``, the largest singular value.
    spectral_radius : float
        The largest eigenvalue modulus of ``W_hh``.
    """

    lags: np.ndarray
    grad_norms: np.ndarray
    jacobian_norms: np.ndarray
    bounds: np.ndarray
    max_derivative: np.ndarray
    spectral_norm: float
    spectral_radius: float


def gradient_flow(
    weight_hh: torch.Tensor,
    seq_len: int,
    *,
    nonlinearity: Literal["tanh", "relu", "linear"] = "tanh",
    batch_size: int = 16,
    input_scale: float = 1.0,
    generator: torch.Generator | int = 0,
) -> GradientFlow:
    r"""Measure ``||dL/dh_t||`` against the lag ``T - t`` for a given recurrent matrix.

    The RNN is ``h_t = f(W_hh h_{t-1} + x_t)``, ``h_0 = 0``, with inputs
    ``x_t ~ N(0, input_scale^2 I)`` of the hidden size; the loss reads only the last
    state, ``L = <u, h_T>`` with a random unit vector ``u``. Then
    ``dL/dh_t = (J_T \cdots J_{t+1})^\top u`` with Jacobians ``J_s = diag(f'(a_s)) W_hh``,
    and ``||J_T \cdots J_{t+1}|| <= (sigma_max(W_hh) max|f'|)^{T-t}``.

    Parameters
    ----------
    weight_hh : torch.Tensor, shape (hidden_size, hidden_size)
        The recurrent matrix (see :func:`recurrent_matrix`).
    seq_len : int
        ``T``, the number of steps.
    nonlinearity : {"tanh", "relu", "linear"}, default "tanh"
        ``f``; ``"linear"`` is the identity, for which the gradient is exactly ``(W_hh^T)^k u``.
    batch_size : int, default 16
        Independent input sequences to average over.
    input_scale : float, default 1.0
        Standard deviation of the inputs (larger inputs saturate tanh more).
    generator : torch.Generator or int, default 0
        Randomness of the inputs and of ``u``.

    Returns
    -------
    GradientFlow
        Computed in float64 on the CPU.
    """
    weight_hh = _check_tensor(weight_hh, "weight_hh", "(hidden_size, hidden_size)")
    if weight_hh.ndim != 2 or weight_hh.shape[0] != weight_hh.shape[1] or weight_hh.shape[0] == 0:
        raise ValueError(f"weight_hh must be square and non-empty, got shape {tuple(weight_hh.shape)}")
    if not torch.isfinite(weight_hh).all():
        raise ValueError("weight_hh must be finite, got NaN or infinite values")
    seq_len = _check_size(seq_len, "seq_len")
    batch_size = _check_size(batch_size, "batch_size")
    _check_nonlinearity(nonlinearity, allowed=("tanh", "relu", "linear"))
    if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) or not input_scale >= 0:
        raise ValueError(f"input_scale must be a non-negative float, got {input_scale!r}")
    gen = _as_cpu_generator(generator)

    w = weight_hh.detach().to("cpu", torch.float64)
    n = w.shape[0]
    x = input_scale * torch.randn(seq_len, batch_size, n, generator=gen, dtype=torch.float64)
    u = torch.randn(n, generator=gen, dtype=torch.float64)
    u = u / u.norm()
    h = torch.zeros(batch_size, n, dtype=torch.float64)
    derivatives = []  # f'(a_t), (batch, n) per step
    for t in range(seq_len):
        a = h @ w.T + x[t]
        if nonlinearity == "tanh":
            h = torch.tanh(a)
            derivatives.append(1.0 - h**2)
        elif nonlinearity == "relu":
            h = torch.relu(a)
            derivatives.append((a > 0).to(torch.float64))
        else:
            h = a
            derivatives.append(torch.ones_like(a))

    # Walk back from T: M_k = dh_T/dh_{T-k} = M_{k-1} J_{T-k+1}, with J_s = diag(f'(a_s)) W.
    product = torch.eye(n, dtype=torch.float64).expand(batch_size, n, n)
    jac_norms, grad_norms = [torch.ones(batch_size, dtype=torch.float64)], [1.0]
    for k in range(1, seq_len + 1):
        jacobian = derivatives[seq_len - k].unsqueeze(-1) * w  # rows scaled: diag(f') W
        product = product @ jacobian
        jac_norms.append(torch.linalg.matrix_norm(product, ord=2))
        grad_norms.append(float((u @ product).norm(dim=-1).mean()))  # dL/dh_{T-k} = M_k^T u
    sigma_max = float(torch.linalg.matrix_norm(w, ord=2))
    max_derivative = torch.stack(derivatives).amax(dim=(0, 2)).numpy()
    lags = np.arange(seq_len + 1)
    bounds = (sigma_max * max_derivative[:, None]) ** lags[None, :]
    return GradientFlow(
        lags=lags,
        grad_norms=np.asarray(grad_norms),
        jacobian_norms=torch.stack(jac_norms, dim=1).numpy(),
        bounds=bounds,
        max_derivative=max_derivative,
        spectral_norm=sigma_max,
        spectral_radius=spectral_radius(w),
    )


# --------------------------------------------------------------------------- gradient clipping
def clip_grad_norm(parameters: Iterable[torch.Tensor] | torch.Tensor, max_norm: float) -> torch.Tensor:
    r"""Rescale gradients in place so that their global L2 norm is at most `max_norm`.

    .. math:: g \leftarrow g \cdot \min\Big(1, \frac{\text{max\_norm}}{\lVert g \rVert_2}\Big)

    The direction of the update is kept; only its length is capped (Pascanu et al. 2013).

    Parameters
    ----------
    parameters : tensor or iterable of tensors
        Tensors whose ``.grad`` to clip (those without a gradient are skipped).
    max_norm : float
        The largest allowed global norm, > 0.

    Returns
    -------
    torch.Tensor, scalar
        The global norm of the gradients *before* clipping (as ``torch.nn.utils.clip_grad_norm_``).

    Raises
    ------
    ValueError
        If `max_norm` is not positive, or the gradient norm is not finite.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not (max_norm > 0 and math.isfinite(max_norm)):
        raise ValueError(f"max_norm must be a positive finite float, got {max_norm!r}")
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach(), dtype=torch.float64) for g in grads]))
    if not torch.isfinite(total):
        raise ValueError(f"the gradients' norm must be finite to clip it, got {float(total)}")
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(scale.to(g.dtype))
    return total.to(grads[0].dtype)


# --------------------------------------------------------------------------- a sequence task: the adding problem
class RNNRegressor(nn.Module):
    """An :class:`RNN` (batch_first) with a linear read-out of the last layer's final state.

    Parameters
    ----------
    input_size, hidden_size : int
    num_layers : int, default 1
    nonlinearity : {"tanh", "relu"}, default "tanh"
    seed : int or torch.Generator, optional
        Randomness of the initialisation of the RNN and the read-out.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: Nonlinearity = "tanh",
        *, seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        gen = _as_torch_generator(seed)
        self.rnn = RNN(input_size, hidden_size, num_layers, nonlinearity, batch_first=True, seed=gen)
        self.readout = nn.Linear(hidden_size, 1)
        _init_uniform(self.readout.parameters(), hidden_size, gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` of shape (batch, seq_len, input_size) -> predictions of shape (batch,)."""
        _, h_n = self.rnn(x)
        return self.readout(h_n[-1]).squeeze(-1)


@dataclass
class AddingConfig:
    """Hyperparameters of :func:`train_adding_problem`.

    Attributes
    ----------
    seq_len : int
        Length of the sequences; the lag between the two marked values is up to this.
    hidden_size : int
        Hidden units of the RNN.
    num_layers : int
        Stacked RNN layers.
    nonlinearity : {"tanh", "relu"}
        The RNN's nonlinearity.
    n_train, n_test : int
        Training and held-out sequences (drawn once, from independent streams).
    epochs : int
        Passes over the training set.
    batch_size : int
        Sequences per step.
    lr : float
        Adam's learning rate.
    clip_norm : float or None
        Clip the gradients' global norm to this before each step; None: no clipping.
    seed : int
        Seeds the data, the initialisation and the shuffling.
    """

    seq_len: int = 10
    hidden_size: int = 32
    num_layers: int = 1
    nonlinearity: Nonlinearity = "tanh"
    n_train: int = 4000
    n_test: int = 1000
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2
    clip_norm: float | None = 1.0
    seed: int = 0


@dataclass
class AddingResult:
    """What :func:`train_adding_problem` returns.

    Attributes
    ----------
    model : RNNRegressor
        The trained model (on the training device, in eval mode).
    train_loss : list of float
        Mean training MSE of every epoch.
    step_loss : list of float
        Training MSE of every step (mini-batch).
    test_mse : list of float
        Held-out MSE after every epoch.
    initial_test_mse : float
        Held-out MSE before training.
    baseline_mse : float
        Held-out MSE of always predicting the training targets' mean (about 1/6).
    config : AddingConfig
    """

    model: RNNRegressor
    train_loss: list[float]
    step_loss: list[float]
    test_mse: list[float]
    initial_test_mse: float
    baseline_mse: float
    config: AddingConfig = field(repr=False)


def train_adding_problem(config: AddingConfig | None = None, *, device: torch.device | str | None = None) -> AddingResult:
    """Train an :class:`RNNRegressor` on the adding problem with Adam and MSE.

    The data are :func:`mlnotes.datasets.adding_problem`: two numbers per step (a value
    in ``[0, 1]`` and a marker), the target the sum of the two marked values.

    Parameters
    ----------
    config : AddingConfig, optional
        Default ``AddingConfig()``.
    device : torch.device or str, optional
        Where to train; default the CPU.

    Returns
    -------
    AddingResult

    Raises
    ------
    TypeError
        If `config` is not an :class:`AddingConfig`.
    ValueError
        If a size in `config` is not a positive int, or `lr`/`clip_norm` is not positive.
    """
    from mlnotes.datasets import adding_problem
    from mlnotes.training import train

    config = AddingConfig() if config is None else config
    if not isinstance(config, AddingConfig):
        raise TypeError(f"config must be an AddingConfig, got {type(config).__name__}")
    for name in ("hidden_size", "num_layers", "n_train", "n_test", "epochs", "batch_size"):
        _check_size(getattr(config, name), f"config.{name}")
    _check_size(config.seq_len, "config.seq_len", minimum=2)
    if not config.lr > 0:
        raise ValueError(f"config.lr must be > 0, got {config.lr}")
    if config.clip_norm is not None and not config.clip_norm > 0:
        raise ValueError(f"config.clip_norm must be > 0 or None, got {config.clip_norm}")
    device = torch.device("cpu") if device is None else torch.device(device)

    streams = np.random.SeedSequence(config.seed).spawn(3)
    train_set = adding_problem(config.n_train, config.seq_len, rng=np.random.default_rng(streams[0]))
    test_set = adding_problem(config.n_test, config.seq_len, rng=np.random.default_rng(streams[1]))
    torch_seed = int(np.random.default_rng(streams[2]).integers(2**62))
    init_gen = torch.Generator().manual_seed(torch_seed)
    shuffle_gen = torch.Generator().manual_seed(torch_seed + 1)

    X, y = torch.as_tensor(train_set.X), torch.as_tensor(train_set.y)
    X_test, y_test = torch.as_tensor(test_set.X, device=device), torch.as_tensor(test_set.y, device=device)
    model = RNNRegressor(2, config.hidden_size, config.num_layers, config.nonlinearity, seed=init_gen).to(device)

    def test_mse(m: nn.Module) -> dict[str, float]:
        return {"test_mse": float(F.mse_loss(m(X_test), y_test))}

    with torch.no_grad():
        initial = test_mse(model)["test_mse"]
        baseline = float(((y_test - y.mean().to(device)) ** 2).mean())
    history = train(
        model, lambda m, xb, yb: F.mse_loss(m(xb), yb), (X, y), epochs=config.epochs, lr=config.lr,
        batch_size=config.batch_size, device=device, generator=shuffle_gen, clip_grad_norm=config.clip_norm,
        eval_fn=test_mse, progress=False,
    )
    model.eval()
    return AddingResult(
        model=model, train_loss=history["loss"], step_loss=history["step_loss"], test_mse=history["test_mse"],
        initial_test_mse=initial, baseline_mse=baseline, config=config,
    )


# --------------------------------------------------------------------------- exercises


def check_exercise_1(answer: int) -> bool:
    """Exercise 1: how many parameters does ``RNN(input_size=3, hidden_size=5, num_layers=2)`` have?"""
    expected = sum(p.numel() for p in RNN(3, 5, num_layers=2, seed=0).parameters())
    value = _as_float(answer)
    return _report(
        value == expected,
        f"Correct: layer 0 has 5*3 + 5*5 + 5 + 5 = 50, layer 1 has 5*5 + 5*5 + 5 + 5 = 60; {expected} in all.",
        "Not yet: per layer count weight_ih (hidden x layer input), weight_hh (hidden x hidden) and two biases.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: in the scalar linear RNN ``h_t = w h_{t-1} + x_t`` with ``w = 0.9``, what is ``dh_50/dh_0``?"""
    expected = 0.9**50
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        f"Correct: w^50 = {expected:.5f}; after 50 steps only half a percent of the signal is left.",
        "Not yet: each step multiplies the derivative by dh_t/dh_{t-1} = w.",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the largest spectral norm of ``W_hh`` for which a tanh RNN's gradient bound shrinks by
    at least a factor 2 every 10 steps, when ``max|tanh'| = 1``."""
    expected = 0.5 ** (1 / 10)
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        f"Correct: sigma^10 <= 1/2 gives sigma <= 2^(-1/10), about {expected:.4f}.",
        "Not yet: the bound after k steps is sigma^k; solve sigma^10 = 1/2.",
    )
