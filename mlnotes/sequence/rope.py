"""Rotary position embedding (RoPE): 1-D, 2-D, inside linear attention, and its decay bound.

Implements the rotary position embedding of Su et al., "RoFormer: Enhanced
Transformer with Rotary Position Embedding" (Neurocomputing 2024, arXiv:2104.09864):
every pair of features of a query or key at position ``m`` is rotated by the angle
``m * theta_i``, so that the dot product of a rotated query and a rotated key depends
on their positions only through ``m - n``. Included:

- :func:`apply_rope` in the two memory layouts in use, ``"half"`` (pairs
  ``(i, i + dim/2)``, GPT-NeoX and LLaMA-style ``rotate_half``) and ``"interleaved"``
  (pairs ``(2i, 2i+1)``, the paper's and GPT-J's), and :func:`apply_rope_complex`,
  the same map written as multiplication of complex numbers by ``exp(i m theta)``;
- the frequencies :func:`rope_frequencies`, the cos/sin cache :func:`rope_cache` and
  the rotation itself, :func:`rotate_pairs`;
- :func:`apply_rope_2d`, axial 2-D RoPE for image patches (half of the pairs rotate
  with the column index, half with the row index), as RoPE-Axial in Heo et al.,
  "Rotary Position Embedding for Vision Transformer" (ECCV 2024);
- :func:`linear_attention_rope`, RoPE inside linear attention (RoFormer Section 3.4.3,
  with the feature map of Katharopoulos et al. 2020);
- :func:`rope_decay_bound`, the long-range decay bound of RoFormer Section 3.4.3;
- :func:`ntk_scaled_base`, the "NTK-aware" base change used to extend the context.

The chapter is ``book/sequence/rope.ipynb``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "Layout",
    "rope_frequencies",
    "rope_cache",
    "rotate_pairs",
    "apply_rope",
    "apply_rope_complex",
    "interleaved_to_half_permutation",
    "grid_positions",
    "apply_rope_2d",
    "elu_feature_map",
    "linear_attention_rope",
    "rope_decay_bound",
    "ntk_scaled_base",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]

Layout = Literal["half", "interleaved"]
_LAYOUTS = ("half", "interleaved")


# --------------------------------------------------------------------------- validation
def _check_base(base: float, name: str = "base") -> float:
    if isinstance(base, bool) or not isinstance(base, (int, float)):
        raise TypeError(f"{name} must be a float > 1, got {type(base).__name__}")
    if not (math.isfinite(base) and base > 1):
        raise ValueError(f"{name} must be a finite float > 1, got {base}")
    return float(base)


def _check_layout(layout: str) -> str:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    return layout


def _check_dim(dim: int, multiple: int = 2, name: str = "dim") -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if dim < multiple or dim % multiple:
        raise ValueError(f"{name} must be a positive multiple of {multiple}, got {dim}")
    return dim


def _check_features(x: torch.Tensor, name: str = "x", multiple: int = 2, check_finite: bool = True) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., seq_len, dim), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a real floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., seq_len, dim), got shape {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-1] % multiple:
        raise ValueError(f"{name}'s last dimension (dim) must be a positive multiple of {multiple}, got {x.shape[-1]}")
    if check_finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf")


def _check_positions(positions: torch.Tensor, batch_shape: torch.Size, trailing: tuple[int, ...] = ()) -> None:
    """`positions` must broadcast to ``batch_shape + trailing`` without enlarging it."""
    expected = f"shape (..., seq_len{', ' + str(trailing[0]) if trailing else ''}) broadcastable to {tuple(batch_shape) + trailing}"
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"positions must be a torch.Tensor of {expected}, got {type(positions).__name__}")
    if positions.dtype == torch.bool or positions.is_complex():
        raise TypeError(f"positions must be an integer or real floating-point tensor, got dtype {positions.dtype}")
    target = tuple(batch_shape) + trailing
    ok = positions.ndim >= 1 + len(trailing) and positions.ndim <= len(target)
    if ok:
        try:
            ok = torch.broadcast_shapes(positions.shape, target) == torch.Size(target)
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(f"positions must have {expected}, got shape {tuple(positions.shape)}")
    if positions.is_floating_point() and not bool(torch.isfinite(positions).all()):
        raise ValueError("positions must be finite, got NaN or inf")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32, float16 and bfloat16 are computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _angle_dtype(device: torch.device) -> torch.dtype:
    """Angles ``m * theta`` are formed in float64 (MPS has none: float32 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


# --------------------------------------------------------------------------- frequencies and cache
def rope_frequencies(
    dim: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""The rotation frequencies :math:`\theta_i = \text{base}^{-2i/\text{dim}}`, :math:`i = 0, \dots, \text{dim}/2 - 1`.

    Parameters
    ----------
    dim : int
        The (even) number of features that are rotated; there are ``dim // 2`` pairs.
    base : float, default 10000.0
        The base of the geometric progression (> 1). Pair 0 turns by one radian per
        position; the last pair by ``base**(-(dim - 2) / dim)``.
    device, dtype : optional
        Where and in which floating-point type to return the frequencies.

    Returns
    -------
    torch.Tensor, shape (dim // 2,)
        Decreasing frequencies, in radians per position.
    """
    dim = _check_dim(dim)
    base = _check_base(base)
    exponents = torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim
    return (base ** -exponents).to(dtype)


def rope_cache(
    positions: torch.Tensor | int,
    dim: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The cos/sin cache: :math:`\cos(m\theta_i)` and :math:`\sin(m\theta_i)` for every position and pair.

    Models compute it once for their longest sequence and index it by position; the
    angles are formed in float64 (float32 on MPS), and only the cosines and sines are
    rounded to `dtype`, so that large positions keep their exact angles.

    Parameters
    ----------
    positions : torch.Tensor of any shape, or int
        Positions ``m`` (integer or real). An int ``n`` means ``arange(n)``.
    dim : int
        Even number of rotated features.
    base : float, default 10000.0
        Frequency base of :func:`rope_frequencies`.
    device : optional
        Device of the result when `positions` is an int (else that of `positions`).
    dtype : torch.dtype, default torch.float32
        Floating-point type of the result.

    Returns
    -------
    cos, sin : torch.Tensor, shape positions.shape + (dim // 2,)
    """
    if isinstance(positions, int) and not isinstance(positions, bool):
        if positions < 0:
            raise ValueError(f"positions must be a non-negative int or a tensor, got {positions}")
        positions = torch.arange(positions, device=device)
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"positions must be an int or a torch.Tensor, got {type(positions).__name__}")
    angle_dtype = _angle_dtype(positions.device)
    theta = rope_frequencies(dim, base, device=positions.device, dtype=angle_dtype)
    angles = positions.to(angle_dtype).unsqueeze(-1) * theta
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, layout: Layout = "half") -> torch.Tensor:
    r"""Rotate every feature pair :math:`(a, b)` of `x` by its angle: :math:`(a\cos - b\sin,\ a\sin + b\cos)`.

    The core of RoPE, without checks (the public functions validate first).

    Parameters
    ----------
    x : torch.Tensor, shape (..., seq_len, dim)
    cos, sin : torch.Tensor, shape broadcastable to (..., seq_len, dim // 2)
        Cosine and sine of each pair's angle, in the dtype of `x`.
    layout : {"half", "interleaved"}
        ``"half"``: pair ``i`` is features ``(i, i + dim/2)``; ``"interleaved"``: ``(2i, 2i+1)``.

    Returns
    -------
    torch.Tensor, shape (..., seq_len, dim)
    """
    if layout == "half":
        first, second = x.chunk(2, dim=-1)
        return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)
    first, second = x[..., 0::2], x[..., 1::2]
    return torch.stack((first * cos - second * sin, first * sin + second * cos), dim=-1).flatten(-2)


def _default_positions(x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    if positions is None:
        return torch.arange(x.shape[-2], device=x.device)
    _check_positions(positions, x.shape[:-1])
    return positions.to(x.device)


# --------------------------------------------------------------------------- 1-D RoPE
def apply_rope(
    x: torch.Tensor,
    positions: torch.Tensor | None = None,
    base: float = 10000.0,
    *,
    layout: Layout = "half",
) -> torch.Tensor:
    r"""Rotary position embedding of queries or keys: :math:`f(x, m) = R_{\Theta, m}\, x`.

    Pair :math:`i` of the features of the vector at position :math:`m` is rotated by
    the angle :math:`m\theta_i`, :math:`\theta_i = \text{base}^{-2i/d}`, so that
    :math:`\langle f(q, m), f(k, n)\rangle` depends on :math:`m - n` only.

    Half-precision inputs (float16, bfloat16) are rotated in float32 and the result
    is rounded once to the input's dtype: the result is then the exact rotation up to
    one rounding, where a computation in bfloat16 would also round every cosine, sine
    and product (and, if the positions were bfloat16 too, merge distinct positions).

    Parameters
    ----------
    x : torch.Tensor, shape (..., seq_len, dim)
        Queries or keys (real floating point; `dim` even), for example
        ``(batch, heads, seq_len, head_dim)``.
    positions : torch.Tensor, optional
        Position of every vector, integer or real: shape ``(seq_len,)`` or any shape
        ``(..., seq_len)`` that broadcasts (from the right) to ``x.shape[:-1]``, for
        example ``(batch, 1, seq_len)`` for per-sequence positions with heads. Default
        ``arange(seq_len)``.
    base : float, default 10000.0
        Frequency base (> 1).
    layout : {"half", "interleaved"}, default "half"
        Which features form a pair: ``"half"`` pairs ``i`` with ``i + dim/2`` (GPT-NeoX,
        LLaMA in Hugging Face ``transformers``); ``"interleaved"`` pairs ``2i`` with
        ``2i + 1`` (the RoFormer paper, GPT-J, Meta's LLaMA code).

    Returns
    -------
    torch.Tensor, shape (..., seq_len, dim)
        The rotated vectors, in the dtype and on the device of `x`.

    Raises
    ------
    TypeError
        If `x` is not a real floating-point tensor, `positions` is not an integer or
        real tensor, or `base` is not a number.
    ValueError
        If `dim` is odd, `positions` has the wrong shape, `x` or `positions` holds NaN
        or inf, `base` <= 1 or `layout` is unknown.
    """
    _check_features(x)
    layout = _check_layout(layout)
    positions = _default_positions(x, positions)
    compute = _compute_dtype(x.dtype)
    cos, sin = rope_cache(positions, x.shape[-1], base, dtype=compute)
    return rotate_pairs(x.to(compute), cos, sin, layout=layout).to(x.dtype)


def apply_rope_complex(
    x: torch.Tensor,
    positions: torch.Tensor | None = None,
    base: float = 10000.0,
    *,
    layout: Layout = "half",
) -> torch.Tensor:
    r"""RoPE in complex form: each pair is a complex number :math:`z_i`, multiplied by :math:`e^{i m\theta_i}`.

    The same map as :func:`apply_rope` (arguments, result and errors are the same),
    written as RoFormer's equation (the 2-D case) and Meta's LLaMA code write it.
    Always computed in complex128 or complex64 (half-precision complex is not
    supported by PyTorch on every device).
    """
    _check_features(x)
    layout = _check_layout(layout)
    positions = _default_positions(x, positions)
    compute = _compute_dtype(x.dtype)
    half = x.shape[-1] // 2
    theta = rope_frequencies(x.shape[-1], base, device=x.device, dtype=_angle_dtype(x.device))
    angles = positions.to(theta.dtype).unsqueeze(-1) * theta
    rotation = torch.polar(torch.ones_like(angles), angles).to(torch.complex128 if compute == torch.float64 else torch.complex64)
    xc = x.to(compute)
    if layout == "half":
        z = torch.complex(xc[..., :half], xc[..., half:])
        rotated = z * rotation
        out = torch.cat((rotated.real, rotated.imag), dim=-1)
    else:
        z = torch.view_as_complex(xc.reshape(*x.shape[:-1], half, 2).contiguous())
        out = torch.view_as_real(z * rotation).flatten(-2)
    return out.to(x.dtype)


def interleaved_to_half_permutation(dim: int) -> torch.Tensor:
    """The feature permutation that turns the interleaved layout into the rotate-half layout.

    With ``perm = interleaved_to_half_permutation(dim)`` (even features first, then
    odd: ``[0, 2, ..., dim-2, 1, 3, ..., dim-1]``),
    ``apply_rope(x[..., perm], layout="half") == apply_rope(x, layout="interleaved")[..., perm]``.
    Permuting the rows of a model's query and key projections by `perm` therefore
    converts its weights from one layout to the other (dot products do not change
    under a common permutation of the features).

    Parameters
    ----------
    dim : int
        Even number of features.

    Returns
    -------
    torch.Tensor, shape (dim,), dtype int64
    """
    dim = _check_dim(dim)
    return torch.cat((torch.arange(0, dim, 2), torch.arange(1, dim, 2)))


# --------------------------------------------------------------------------- 2-D RoPE
def grid_positions(height: int, width: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """(row, column) of every patch of a ``height x width`` grid in row-major order, shape (height * width, 2)."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"grid {name} must be a positive int, got {value!r}")
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    return torch.stack((rows, cols), dim=-1)


def apply_rope_2d(
    x: torch.Tensor,
    positions_hw: torch.Tensor | None = None,
    grid: tuple[int, int] | None = None,
    base: float = 100.0,
    *,
    layout: Layout = "half",
) -> torch.Tensor:
    r"""Axial 2-D RoPE for image patches: half the pairs rotate with the column, half with the row.

    The ``dim // 2`` pairs are split in two halves of ``dim // 4`` pairs; the first
    half turns by :math:`x\,\theta_j` (column index :math:`x`), the second by
    :math:`y\,\theta_j` (row index :math:`y`), with :math:`\theta_j =
    \text{base}^{-4j/\text{dim}}` in both (RoPE-Axial of Heo et al. 2024, whose
    ViT default base is 100). The score of a query patch and a key patch then depends
    on their offset :math:`(\Delta y, \Delta x)` only.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n_patches, dim)
        Queries or keys of the patches; `dim` a multiple of 4.
    positions_hw : torch.Tensor, optional
        (row, column) of every patch, integer or real, shape ``(n_patches, 2)`` or
        broadcastable ``(..., n_patches, 2)``. Default: the patches of `grid` in
        row-major order (:func:`grid_positions`).
    grid : tuple of int (height, width), optional
        The patch grid, needed when `positions_hw` is omitted
        (``height * width == n_patches``).
    base : float, default 100.0
        Frequency base (> 1).
    layout : {"half", "interleaved"}, default "half"
        Which features form a pair, as in :func:`apply_rope`.

    Returns
    -------
    torch.Tensor, shape (..., n_patches, dim)

    Raises
    ------
    TypeError, ValueError
        As :func:`apply_rope`; also if `dim` is not a multiple of 4, or neither (or a
        mismatching) `grid` nor `positions_hw` is given.
    """
    _check_features(x, multiple=4)
    layout = _check_layout(layout)
    if positions_hw is None:
        if grid is None or len(grid) != 2:
            raise ValueError(f"grid must be (height, width) when positions_hw is omitted, got {grid!r}")
        height, width = grid
        positions_hw = grid_positions(height, width, device=x.device)
        if positions_hw.shape[0] != x.shape[-2]:
            raise ValueError(f"grid {tuple(grid)} has {positions_hw.shape[0]} patches but x has n_patches = {x.shape[-2]}")
    else:
        _check_positions(positions_hw, x.shape[:-1], trailing=(2,))
        positions_hw = positions_hw.to(x.device)
    compute = _compute_dtype(x.dtype)
    quarter = x.shape[-1] // 2
    cos_col, sin_col = rope_cache(positions_hw[..., 1], quarter, base, dtype=compute)
    cos_row, sin_row = rope_cache(positions_hw[..., 0], quarter, base, dtype=compute)
    cos, sin = torch.cat((cos_col, cos_row), dim=-1), torch.cat((sin_col, sin_row), dim=-1)
    return rotate_pairs(x.to(compute), cos, sin, layout=layout).to(x.dtype)


# --------------------------------------------------------------------------- linear attention
def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    r"""The feature map :math:`\phi(x) = \text{elu}(x) + 1 > 0` of Katharopoulos et al. (2020)."""
    return torch.nn.functional.elu(x) + 1.0


def linear_attention_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    positions: torch.Tensor | None = None,
    base: float = 10000.0,
    layout: Layout = "half",
    eps: float = 1e-6,
) -> torch.Tensor:
    r"""Linear attention with RoPE applied to the feature-mapped queries and keys (RoFormer eq. 19).

    .. math::
        \text{out}_m = \frac{\sum_n \langle R_m\phi(q_m),\, R_n\phi(k_n)\rangle\, v_n}
                            {\sum_n \langle \phi(q_m),\, \phi(k_n)\rangle + \epsilon}

    with :math:`\phi` = :func:`elu_feature_map` and the sums over all :math:`n`, or
    :math:`n \le m` when `causal`. The rotation enters the numerator only: the
    denominator keeps positive terms, so it cannot vanish. Computed in time linear in
    ``seq_len`` by associativity: :math:`\sum_n (R_n\phi(k_n)) v_n^\top` (a prefix sum
    when causal) is formed first.

    Parameters
    ----------
    q, k : torch.Tensor, shape (..., seq_len, dim)
        Queries and keys (`dim` even).
    v : torch.Tensor, shape (..., seq_len, dim_v)
        Values.
    causal : bool, default False
        Whether position ``m`` attends to ``n <= m`` only.
    positions, base, layout
        As in :func:`apply_rope` (shared by queries and keys).
    eps : float, default 1e-6
        Added to the denominator.

    Returns
    -------
    torch.Tensor, shape (..., seq_len, dim_v)

    Raises
    ------
    TypeError, ValueError
        As :func:`apply_rope` for `q` and `k`; also if `v` does not match them in its
        leading dimensions, or the dtypes differ.
    """
    _check_features(q, "q")
    _check_features(k, "k")
    if not isinstance(v, torch.Tensor) or not v.is_floating_point():
        raise TypeError(f"v must be a real floating-point tensor, got {type(v).__name__ if not isinstance(v, torch.Tensor) else v.dtype}")
    if k.shape != q.shape:
        raise ValueError(f"k must have the shape of q, {tuple(q.shape)}, got {tuple(k.shape)}")
    if v.ndim != q.ndim or v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v must have shape {tuple(q.shape[:-1])} + (dim_v,), got {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    rot_q = apply_rope(phi_q, positions, base, layout=layout)
    rot_k = apply_rope(phi_k, positions, base, layout=layout)
    if causal:
        kv = torch.cumsum(rot_k.unsqueeze(-1) * v.unsqueeze(-2), dim=-3)  # (..., seq_len, dim, dim_v)
        numerator = torch.einsum("...nd,...nde->...ne", rot_q, kv)
        denominator = (phi_q * torch.cumsum(phi_k, dim=-2)).sum(-1, keepdim=True)
    else:
        kv = rot_k.transpose(-1, -2) @ v  # (..., dim, dim_v)
        numerator = rot_q @ kv
        denominator = phi_q @ phi_k.sum(dim=-2).unsqueeze(-1)
    return numerator / (denominator + eps)


# --------------------------------------------------------------------------- long-range decay
def rope_decay_bound(distances: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    r"""RoFormer's relative upper bound :math:`\frac{1}{d/2}\sum_{j=1}^{d/2} |S_j|` at each relative distance.

    With :math:`S_j = \sum_{k=0}^{j-1} e^{i r\theta_k}` at distance :math:`r = m - n`,
    Abel summation gives :math:`|q_m^\top k_n| \le \max_i |h_{i+1} - h_i|
    \sum_{j=1}^{d/2} |S_j|`, where :math:`h_i` is the product of the query's and
    conjugated key's :math:`i`-th complex pair (and :math:`h_{d/2} = 0`). This returns
    the distance-dependent factor divided by ``dim / 2``; it decays, on average, with
    :math:`|r|` (RoFormer Section 3.4.3, Figure 2).

    Parameters
    ----------
    distances : torch.Tensor, shape (n,)
        Relative distances ``m - n`` (real), computed in float64.
    dim : int
        Even number of rotated features.
    base : float, default 10000.0
        Frequency base.

    Returns
    -------
    torch.Tensor, shape (n,), float64
    """
    if not isinstance(distances, torch.Tensor) or distances.dtype == torch.bool or distances.is_complex():
        raise TypeError("distances must be an integer or real torch.Tensor of shape (n,)")
    if distances.ndim != 1:
        raise ValueError(f"distances must have shape (n,), got {tuple(distances.shape)}")
    if distances.is_floating_point() and not bool(torch.isfinite(distances).all()):
        raise ValueError("distances must be finite, got NaN or inf")
    theta = rope_frequencies(dim, base, device=distances.device, dtype=torch.float64)
    phases = torch.polar(torch.ones(len(distances), len(theta), dtype=torch.float64, device=distances.device),
                         distances.double().unsqueeze(-1) * theta)
    partial_sums = torch.cumsum(phases, dim=-1)  # S_1, ..., S_{d/2}
    return partial_sums.abs().mean(dim=-1)


def ntk_scaled_base(base: float, scale: float, dim: int) -> float:
    r"""The "NTK-aware" base for stretching the context by `scale`: :math:`b' = b\, s^{d/(d-2)}`.

    With it the slowest pair turns over ``scale`` times the trained length by the
    angle it turned over the trained length (as in position interpolation), while
    the fastest pair (:math:`\theta_0 = 1`) is unchanged, so nearby positions stay as
    distinguishable as in training. Proposed in a 2023 online post by "bloc97" and
    analysed in the YaRN paper (Peng et al. 2024).

    Parameters
    ----------
    base : float
        The base the model was trained with.
    scale : float
        Ratio of the new context length to the trained one (>= 1).
    dim : int
        Even number of rotated features (> 2).

    Returns
    -------
    float
    """
    base = _check_base(base)
    dim = _check_dim(dim)
    if dim < 4:
        raise ValueError(f"dim must be at least 4 for the NTK-aware base, got {dim}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale >= 1):
        raise ValueError(f"scale must be a finite float >= 1, got {scale!r}")
    return base * scale ** (dim / (dim - 2))


# --------------------------------------------------------------------------- exercises


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the slowest frequency for ``dim = 8``, ``base = 10000`` (radians per position)."""
    expected = float(rope_frequencies(8, 10000.0)[-1])
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-6),
        "Correct: theta_3 = 10000^(-6/8) = 10^-3 radians per position.",
        "Not yet: theta_i = base^(-2i/dim) for i = 0, ..., dim/2 - 1; take the last one.",
    )


def check_exercise_2(answer: object) -> bool:
    """Exercise 2: the permutation that turns the interleaved layout into the half layout, for ``dim = 8``."""
    expected = interleaved_to_half_permutation(8).tolist()
    try:
        given = [int(v) for v in answer]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        given = None
    return _report(
        given == expected,
        f"Correct: {expected}, the even features first, then the odd ones.",
        "Not yet: the pair (2i, 2i+1) of the interleaved layout must land on positions (i, i + dim/2).",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the wavelength (in positions) of the slowest pair for ``dim = 128``, ``base = 10000``."""
    expected = 2 * math.pi / float(rope_frequencies(128, 10000.0)[-1])
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        f"Correct: 2 pi * 10000^(126/128), about {expected:,.0f} positions.",
        "Not yet: the wavelength of a pair is 2 pi / theta_i; the slowest pair is i = dim/2 - 1.",
    )
