r"""Normalising flows, continuous normalising flows, and why flow matching is diffusion with another path.

A *normalising flow* maps data ``x`` to a latent ``z = f(x)`` with a known density and
scores the data by the change of variables,
:math:`\log p(x) = \log p_Z(f(x)) + \log\lvert\det \partial f / \partial x\rvert`.
Discrete flows need invertible layers with cheap determinants, such as the affine
coupling layer of RealNVP (Dinh, Sohl-Dickstein & Bengio, "Density Estimation Using
Real NVP", ICLR 2017; :class:`AffineCoupling`, :class:`CouplingFlow`).

A *continuous* normalising flow (Chen et al., "Neural Ordinary Differential
Equations", NeurIPS 2018; Grathwohl et al., "FFJORD", ICLR 2019) moves ``x`` by an ODE
``dx/dt = v(x, t)``, and the log-density along a trajectory obeys the *instantaneous
change of variables*

.. math:: \frac{d}{dt} \log p_t\big(x(t)\big) = -\operatorname{tr}\frac{\partial v}{\partial x}\big(x(t), t\big),

so that :math:`\log p_{t_0}(x) = \log p_{t_1}(x(t_1)) + \int_{t_0}^{t_1} \operatorname{tr}\,\partial_x v\,dt`
(:func:`cnf_log_likelihood`). The trace is computed exactly with one
vector-Jacobian product per dimension (:func:`divergence_exact`) or estimated
without bias with Hutchinson's estimator :math:`\mathbb{E}[e^\top (\partial_x v) e]`
(:func:`hutchinson_probes`, :func:`divergence_hutchinson`, :func:`hutchinson_variance`).
The ODE is solved by the classical fixed-step Runge-Kutta method (:func:`rk4_integrate`).

The probability-flow ODE of a diffusion model (Song et al. 2021) and the flow of a
flow-matching model (Lipman et al. 2023) are CNFs, so both have exact likelihoods
by the same machinery; the velocity and the denoiser convert exactly into each other
(:func:`~mlnotes.diffusion.common.denoiser_from_velocity`), and the flow-matching loss
on the straight path is a weighted denoising loss (:func:`flow_matching_loss`,
:func:`weighted_denoising_loss`, :func:`flow_matching_denoising_weight`).

Known answers: :class:`GaussianLinearPathVelocity` is the exact velocity of the
straight path ``x_t = (1 - t) x0 + t eps`` for Gaussian data, in closed form, with
its flow map and marginal densities; :func:`mixture_path_log_prob` is the exact
marginal density of a Gaussian mixture on any noising path.

Chapter: ``book/diffusion/flows_vs_diffusion.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mlnotes.diffusion.analytic import GaussianMixtureDenoiser
from mlnotes.diffusion.common import NoisePath, _check_points, _positive_int, _uniform_init_
from mlnotes.exercises import as_float as _as_float, report as _report

__all__ = [
    "rk4_integrate",
    "divergence_exact",
    "hutchinson_probes",
    "divergence_hutchinson",
    "hutchinson_variance",
    "standard_normal_log_prob",
    "CNFLikelihood",
    "cnf_log_likelihood",
    "GaussianLinearPathVelocity",
    "mixture_path_log_prob",
    "flow_matching_loss",
    "weighted_denoising_loss",
    "flow_matching_denoising_weight",
    "AffineCoupling",
    "CouplingFlow",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]

State = torch.Tensor | tuple[torch.Tensor, ...]
VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- validation helpers
def _finite_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _check_callable(fn: object, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def _time_tensor(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` as a ``(batch,)`` tensor in the dtype and on the device of `like`."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.expand(like.shape[0]) if t.ndim == 0 else t


# --------------------------------------------------------------------------- the ODE solver
def _axpy(state: State, h: float, slope: State) -> State:
    if isinstance(state, tuple):
        return tuple(s + h * k for s, k in zip(state, slope))
    return state + h * slope


def _rk4_combine(state: State, h: float, k1: State, k2: State, k3: State, k4: State) -> State:
    if isinstance(state, tuple):
        return tuple(s + (h / 6) * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4))
    return state + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4_integrate(
    f: Callable[[float, State], State], state: State, t0: float, t1: float, n_steps: int
) -> State:
    r"""Integrate ``d state / dt = f(t, state)`` from `t0` to `t1` with the classical Runge-Kutta method.

    `n_steps` equal steps of size ``h = (t1 - t0) / n_steps`` (negative when ``t1 < t0``):

    .. math:: k_1 = f(t, y),\ k_2 = f(t + \tfrac h2, y + \tfrac h2 k_1),\
              k_3 = f(t + \tfrac h2, y + \tfrac h2 k_2),\ k_4 = f(t + h, y + h k_3),\qquad
              y \leftarrow y + \tfrac h6 (k_1 + 2k_2 + 2k_3 + k_4).

    The global error is :math:`O(h^4)` for smooth ``f``; ``f`` is evaluated ``4 n_steps`` times.

    Parameters
    ----------
    f : callable
        ``f(t, state)`` with ``t`` a Python float; returns the derivative, shaped like `state`.
    state : torch.Tensor or tuple of torch.Tensor
        The initial value at `t0` (a tuple integrates several tensors together, such as
        the position and the accumulated log-determinant of a CNF).
    t0, t1 : float
        Start and end times.
    n_steps : int
        Number of steps, ``>= 1``.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        The state at `t1`, shaped like `state`.

    Raises
    ------
    TypeError
        If `f` is not callable or `state` is not a floating-point tensor (or a tuple of them).
    ValueError
        If `n_steps` is not an int ``>= 1`` or a time is not finite.
    """
    _check_callable(f, "f")
    parts = state if isinstance(state, tuple) else (state,)
    if not parts or not all(isinstance(p, torch.Tensor) and p.is_floating_point() for p in parts):
        raise TypeError("state must be a floating-point torch.Tensor or a non-empty tuple of them")
    t0, t1 = _finite_float(t0, "t0"), _finite_float(t1, "t1")
    n_steps = _positive_int(n_steps, "n_steps")
    h = (t1 - t0) / n_steps
    for i in range(n_steps):
        t = t0 + i * h
        k1 = f(t, state)
        k2 = f(t + h / 2, _axpy(state, h / 2, k1))
        k3 = f(t + h / 2, _axpy(state, h / 2, k2))
        k4 = f(t + h, _axpy(state, h, k3))
        state = _rk4_combine(state, h, k1, k2, k3, k4)
    return state


# --------------------------------------------------------------------------- the trace of the Jacobian
def _prepare(x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    # A fresh leaf unless we must keep the graph that x already belongs to (training through the ODE).
    if create_graph and x.requires_grad:
        return x
    return x.detach().requires_grad_(True)


def divergence_exact(
    velocity: VelocityFn, x: torch.Tensor, t: float | torch.Tensor, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The velocity and its exact divergence :math:`\nabla\!\cdot v = \operatorname{tr}\,\partial v/\partial x`.

    One forward pass and ``D`` vector-Jacobian products (``D`` = the number of entries of
    one sample): product ``i`` returns row ``i`` of the Jacobian, :math:`e_i^\top \partial_x v`,
    whose ``i``-th entry is the diagonal element. The samples of the batch must not
    interact in `velocity` (no batch normalisation in training mode), so that one
    backward pass through ``v[:, i].sum()`` gives every sample's row at once.

    Parameters
    ----------
    velocity : callable
        ``velocity(x, t)`` with ``x`` of shape ``(batch, *dims)`` and ``t`` of shape ``(batch,)``.
    x : torch.Tensor, shape ``(batch, *dims)``
    t : float or torch.Tensor of shape () or (batch,)
    create_graph : bool, default False
        Keep the graph of the divergence (to train through it); otherwise both outputs
        are detached.

    Returns
    -------
    v : torch.Tensor, shape ``(batch, *dims)``
    divergence : torch.Tensor, shape (batch,)
    """
    _check_callable(velocity, "velocity")
    x = _prepare(_check_points(x), create_graph)
    with torch.enable_grad():
        v = velocity(x, _time_tensor(t, x))
        if not isinstance(v, torch.Tensor) or v.shape != x.shape:
            raise ValueError(f"velocity must return a tensor of the input's shape {tuple(x.shape)}")
        flat = v.reshape(x.shape[0], -1)
        divergence = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(flat.shape[1]):
            row = torch.autograd.grad(flat[:, i].sum(), x, create_graph=create_graph, retain_graph=True)[0]
            divergence = divergence + row.reshape(x.shape[0], -1)[:, i]
    if not create_graph:
        return v.detach(), divergence.detach()
    return v, divergence


def hutchinson_probes(
    n_probes: int, like: torch.Tensor, generator: torch.Generator, kind: str = "rademacher"
) -> torch.Tensor:
    r"""Random probe vectors ``e`` with :math:`\mathbb{E}[e e^\top] = I`, shape ``(n_probes, *like.shape)``.

    ``kind="rademacher"``: independent signs ``+-1`` (each with probability 1/2);
    ``kind="gaussian"``: independent standard normals. Drawn with `generator` (which
    must be on the device of `like`) in the dtype of `like`.
    """
    n_probes = _positive_int(n_probes, "n_probes")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(like, torch.Tensor) or not like.is_floating_point():
        raise TypeError("like must be a floating-point tensor")
    if generator.device.type != like.device.type:
        raise ValueError(f"generator must be on the device of x ({like.device}), got {generator.device}")
    shape = (n_probes, *like.shape)
    if kind == "rademacher":
        signs = torch.randint(0, 2, shape, generator=generator, device=like.device)
        return (2 * signs - 1).to(like.dtype)
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    raise ValueError(f"kind must be 'rademacher' or 'gaussian', got {kind!r}")


def divergence_hutchinson(
    velocity: VelocityFn,
    x: torch.Tensor,
    t: float | torch.Tensor,
    probes: torch.Tensor,
    *,
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The velocity and Hutchinson's estimates :math:`e_k^\top (\partial v / \partial x)\, e_k` of its divergence.

    Each estimate is unbiased, :math:`\mathbb{E}[e^\top J e] = \operatorname{tr}(J\,\mathbb{E}[e e^\top]) = \operatorname{tr} J`,
    and costs one vector-Jacobian product :math:`e^\top J`, whatever the dimension;
    their mean over the probes is the estimate of the divergence. The probes run as
    one batch: `x` is repeated ``n_probes`` times, so that one forward and one backward
    pass give every :math:`e_k^\top J` (the work of ``n_probes`` samples, each with one
    probe, as in FFJORD). The samples must not interact in `velocity`.

    Parameters
    ----------
    velocity : callable
        As in :func:`divergence_exact`.
    x : torch.Tensor, shape ``(batch, *dims)``
    t : float or torch.Tensor of shape () or (batch,)
    probes : torch.Tensor, shape ``(n_probes, batch, *dims)``
        From :func:`hutchinson_probes`.
    create_graph : bool, default False

    Returns
    -------
    v : torch.Tensor, shape ``(batch, *dims)``
    estimates : torch.Tensor, shape (n_probes, batch)
        One estimate per probe and sample.
    """
    _check_callable(velocity, "velocity")
    x = _prepare(_check_points(x), create_graph)
    if not isinstance(probes, torch.Tensor) or probes.shape[1:] != x.shape or probes.ndim != x.ndim + 1:
        raise ValueError(f"probes must have shape (n_probes, {', '.join(map(str, x.shape))})")
    n_probes, batch = probes.shape[0], x.shape[0]
    probes = probes.to(x.dtype).reshape(n_probes * batch, *x.shape[1:])
    with torch.enable_grad():
        repeated = x.repeat(n_probes, *([1] * (x.ndim - 1)))
        v = velocity(repeated, _time_tensor(t, x).repeat(n_probes))
        if not isinstance(v, torch.Tensor) or v.shape != repeated.shape:
            raise ValueError(f"velocity must return a tensor of the input's shape {tuple(repeated.shape)}")
        rows = torch.autograd.grad(v, repeated, grad_outputs=probes, create_graph=create_graph)[0]
        estimates = (rows * probes).reshape(n_probes, batch, -1).sum(dim=2)
    v = v[:batch]
    if not create_graph:
        return v.detach(), estimates.detach()
    return v, estimates


def hutchinson_variance(matrix: torch.Tensor, kind: str = "rademacher") -> torch.Tensor:
    r"""The variance of one Hutchinson estimate :math:`e^\top A e` of :math:`\operatorname{tr} A`.

    With :math:`S = (A + A^\top)/2`: Gaussian probes give :math:`2\lVert S\rVert_F^2`;
    Rademacher probes give :math:`2\sum_{i \ne j} S_{ij}^2`, never more, and zero for a
    diagonal ``A``.

    Parameters
    ----------
    matrix : torch.Tensor, shape (..., D, D)
    kind : {"rademacher", "gaussian"}

    Returns
    -------
    torch.Tensor, shape (...)
    """
    if not isinstance(matrix, torch.Tensor) or matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError("matrix must be a tensor of square matrices, shape (..., D, D)")
    sym = 0.5 * (matrix + matrix.transpose(-1, -2))
    total = 2 * sym.pow(2).sum(dim=(-1, -2))
    if kind == "gaussian":
        return total
    if kind == "rademacher":
        return total - 2 * torch.diagonal(sym, dim1=-2, dim2=-1).pow(2).sum(-1)
    raise ValueError(f"kind must be 'rademacher' or 'gaussian', got {kind!r}")


# --------------------------------------------------------------------------- the CNF log-likelihood
def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    r"""``log N(z; 0, I)`` summed over every dimension but the first: shape ``(batch,)``."""
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * (flat.pow(2).sum(dim=1) + flat.shape[1] * math.log(2 * math.pi))


class CNFLikelihood(NamedTuple):
    """What :func:`cnf_log_likelihood` returns.

    Attributes
    ----------
    log_px : torch.Tensor, shape (batch,)
        ``log p_{t0}(x)``; with Hutchinson's estimator, the mean of `log_px_probes`.
    z : torch.Tensor, shape ``(batch, *dims)``
        The end of each trajectory, ``x(t1)``.
    integrated_divergence : torch.Tensor, shape (batch,)
        ``int_{t0}^{t1} div v(x(t), t) dt`` (the probe mean with Hutchinson).
    log_px_probes : torch.Tensor of shape (n_probes, batch), or None
        One unbiased estimate per probe (Hutchinson only).
    nfe : int
        Velocity evaluations spent (``4 n_steps``).
    """

    log_px: torch.Tensor
    z: torch.Tensor
    integrated_divergence: torch.Tensor
    log_px_probes: torch.Tensor | None
    nfe: int


def cnf_log_likelihood(
    velocity: VelocityFn,
    x: torch.Tensor,
    prior_log_prob: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    n_steps: int = 100,
    trace: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
    kind: str = "rademacher",
    create_graph: bool = False,
) -> CNFLikelihood:
    r"""Log-likelihood of `x` under a continuous normalising flow, by the instantaneous change of variables.

    Integrates the augmented ODE from ``t0`` (data) to ``t1`` (prior) with :func:`rk4_integrate`,

    .. math:: \frac{d}{dt}\begin{pmatrix} x \\ \ell \end{pmatrix}
              = \begin{pmatrix} v(x, t) \\ \nabla\!\cdot v(x, t) \end{pmatrix},\qquad
              x(t_0) = x,\ \ell(t_0) = 0,

    and returns :math:`\log p_{t_0}(x) = \log p_{t_1}(x(t_1)) + \ell(t_1)` (Chen et al. 2018;
    Grathwohl et al. 2019). With ``trace="hutchinson"`` the divergence is replaced by
    Hutchinson's estimate with `n_probes` probes drawn once and kept for the whole
    trajectory (as FFJORD does), which makes each per-probe log-likelihood an unbiased
    estimate of the exact one computed with the same solver.

    Parameters
    ----------
    velocity : callable
        ``velocity(x, t) = dx/dt`` with ``x`` of shape ``(batch, *dims)`` and ``t`` of shape
        ``(batch,)`` (in the dtype of `x`).
    x : torch.Tensor, shape ``(batch, *dims)``
        Points to score; the computation runs in their dtype and on their device.
    prior_log_prob : callable, optional
        ``log p_{t1}(z)``, shape ``(batch,)``. Default: :func:`standard_normal_log_prob`.
    t0, t1 : float, default 0 and 1
        Data and prior times (``t0 > t1`` integrates backwards).
    n_steps : int, default 100
        RK4 steps.
    trace : {"exact", "hutchinson"}
    n_probes : int, default 1
        Hutchinson probes per sample.
    generator : torch.Generator, optional
        Draws the probes (required for Hutchinson), on the device of `x`.
    kind : {"rademacher", "gaussian"}
        Hutchinson probe distribution.
    create_graph : bool, default False
        Keep the graph for training by maximum likelihood (memory grows with `n_steps`).

    Returns
    -------
    CNFLikelihood

    Raises
    ------
    TypeError
        If `velocity` or `prior_log_prob` is not callable, `x` is not a floating-point
        tensor, or `generator` is missing or not a ``torch.Generator`` for Hutchinson.
    ValueError
        If `x` is empty or not finite, ``t0 == t1``, `n_steps` or `n_probes` is not a
        positive int, or `trace` or `kind` is unknown.
    """
    _check_callable(velocity, "velocity")
    x = _check_points(x)
    if prior_log_prob is None:
        prior_log_prob = standard_normal_log_prob
    _check_callable(prior_log_prob, "prior_log_prob")
    t0, t1 = _finite_float(t0, "t0"), _finite_float(t1, "t1")
    if t0 == t1:
        raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {t0}")
    n_steps = _positive_int(n_steps, "n_steps")
    if trace == "exact":
        probes = None
        log_det0 = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    elif trace == "hutchinson":
        if generator is None:
            raise TypeError("trace='hutchinson' needs a torch.Generator for the probes (generator=...)")
        probes = hutchinson_probes(n_probes, x, generator, kind)
        log_det0 = torch.zeros(probes.shape[0], x.shape[0], dtype=x.dtype, device=x.device)
    else:
        raise ValueError(f"trace must be 'exact' or 'hutchinson', got {trace!r}")
    nfe = 0

    def augmented(t: float, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal nfe
        nfe += 1
        if probes is None:
            return divergence_exact(velocity, state[0], t, create_graph=create_graph)
        return divergence_hutchinson(velocity, state[0], t, probes, create_graph=create_graph)

    z, integrated = rk4_integrate(augmented, (x, log_det0), t0, t1, n_steps)
    prior = prior_log_prob(z)
    if not isinstance(prior, torch.Tensor) or prior.shape != x.shape[:1]:
        raise ValueError(f"prior_log_prob must return a tensor of shape ({x.shape[0]},)")
    if probes is None:
        return CNFLikelihood(prior + integrated, z, integrated, None, nfe)
    per_probe = prior[None] + integrated
    return CNFLikelihood(per_probe.mean(dim=0), z, integrated.mean(dim=0), per_probe, nfe)


# --------------------------------------------------------------------------- known answers
class GaussianLinearPathVelocity:
    r"""The exact velocity of the straight path ``x_t = (1 - t) x0 + t eps`` for Gaussian data ``x0 ~ N(mu, Sigma)``.

    The marginal is :math:`x_t \sim \mathcal{N}(m_t, C_t)` with :math:`m_t = (1 - t)\mu`,
    :math:`C_t = (1 - t)^2\Sigma + t^2 I`, and Gaussian conditioning gives the marginal
    velocity :math:`\mathbb{E}[\varepsilon - x_0 \mid x_t = x]` in closed form:

    .. math:: v(x, t) = -\mu + A_t (x - m_t), \qquad A_t = \tfrac12 \dot C_t C_t^{-1}
              = \big(t I - (1 - t)\Sigma\big)\big((1 - t)^2\Sigma + t^2 I\big)^{-1}.

    All :math:`C_t` share the eigenvectors ``U`` of :math:`\Sigma`, so everything is computed
    in that basis (finite for every ``t`` in ``[0, 1]``). The flow map is
    :math:`x(t) = m_t + C_t^{1/2}\Sigma^{-1/2}(x(0) - \mu)` and the divergence
    :math:`\operatorname{tr} A_t = \tfrac12 \tfrac{d}{dt}\log\det C_t` does not depend on ``x``.

    Parameters
    ----------
    mean : array_like, shape (dim,)
    cov : array_like, shape (dim, dim)
        Symmetric positive definite.

    Notes
    -----
    Computed in the dtype and on the device of the inputs (float64 for the checks).
    """

    def __init__(self, mean: Sequence[float] | np.ndarray | torch.Tensor, cov: Sequence[Sequence[float]] | np.ndarray | torch.Tensor) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float64).cpu()
        cov = torch.as_tensor(cov, dtype=torch.float64).cpu()
        if mean.ndim != 1 or mean.numel() == 0:
            raise ValueError(f"mean must have shape (dim,), got {tuple(mean.shape)}")
        dim = mean.shape[0]
        if cov.shape != (dim, dim):
            raise ValueError(f"cov must have shape ({dim}, {dim}), got {tuple(cov.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(cov).all()):
            raise ValueError("mean and cov must be finite")
        if not torch.allclose(cov, cov.T):
            raise ValueError("cov must be symmetric")
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        if not (eigenvalues > 0).all():
            raise ValueError(f"cov must be positive definite, got eigenvalues down to {float(eigenvalues.min())}")
        self.mean, self.cov = mean, cov
        self._float64 = (mean, eigenvalues, eigenvectors)

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def __repr__(self) -> str:
        return f"GaussianLinearPathVelocity(mean={self.mean.tolist()}, cov={self.cov.tolist()})"

    def _params(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return tuple(p.to(dtype=like.dtype, device=like.device) for p in self._float64)  # type: ignore[return-value]

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")

    def _eigen_rates(self, t: torch.Tensor, eigenvalues: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigenvalues of ``C_t`` and of ``A_t``, shape ``(batch, dim)``."""
        t = t[:, None]
        variances = (1 - t) ** 2 * eigenvalues + t**2
        return variances, (t - (1 - t) * eigenvalues) / variances

    def __call__(self, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """``v(x, t)`` for ``x`` of shape ``(batch, dim)`` and ``t`` a float or ``(batch,)``."""
        self._check_x(x)
        t = _time_tensor(t, x)
        mean, eigenvalues, eigenvectors = self._params(x)
        _, rates = self._eigen_rates(t, eigenvalues)
        coords = (x - (1 - t[:, None]) * mean) @ eigenvectors
        return -mean + (rates * coords) @ eigenvectors.T

    def jacobian(self, t: float | torch.Tensor) -> torch.Tensor:
        """``A_t = dv/dx``, float64, shape ``(dim, dim)`` for a float ``t``, else ``(batch, dim, dim)``."""
        scalar = not isinstance(t, torch.Tensor) or t.ndim == 0
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        _, eigenvalues, eigenvectors = self._float64
        _, rates = self._eigen_rates(t, eigenvalues)
        matrices = eigenvectors[None] @ torch.diag_embed(rates) @ eigenvectors.T[None]
        return matrices[0] if scalar else matrices

    def divergence(self, t: float | torch.Tensor) -> torch.Tensor:
        """``tr A_t``, float64, shape ``()`` or ``(batch,)``."""
        return torch.diagonal(self.jacobian(t), dim1=-2, dim2=-1).sum(-1)

    def marginal(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``m_t`` and covariance ``C_t`` of ``x_t`` (float64)."""
        t = _finite_float(t, "t")
        return (1 - t) * self.mean, (1 - t) ** 2 * self.cov + t**2 * torch.eye(self.dim, dtype=torch.float64)

    def log_prob(self, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """``log p_t(x) = log N(x; m_t, C_t)``, shape ``(batch,)``."""
        self._check_x(x)
        t = _time_tensor(t, x)
        mean, eigenvalues, eigenvectors = self._params(x)
        variances, _ = self._eigen_rates(t, eigenvalues)
        coords = (x - (1 - t[:, None]) * mean) @ eigenvectors
        return -0.5 * ((coords**2 / variances).sum(1) + torch.log(variances).sum(1) + self.dim * math.log(2 * math.pi))

    def flow_map(self, x0: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        r"""Where the ODE started at ``x0`` (time 0) is at time ``t``: :math:`m_t + C_t^{1/2}\Sigma^{-1/2}(x_0 - \mu)`."""
        self._check_x(x0)
        t = _time_tensor(t, x0)
        mean, eigenvalues, eigenvectors = self._params(x0)
        variances, _ = self._eigen_rates(t, eigenvalues)
        coords = (x0 - mean) @ eigenvectors
        return (1 - t[:, None]) * mean + (coords * torch.sqrt(variances / eigenvalues)) @ eigenvectors.T


def mixture_path_log_prob(
    denoiser: GaussianMixtureDenoiser, x: torch.Tensor, t: float | torch.Tensor, path: NoisePath
) -> torch.Tensor:
    """Exact ``log p_t(x)`` of ``x_t = s(t) x0 + s(t) sigma(t) eps`` for the mixture of `denoiser`, shape ``(batch,)``.

    At ``t = 0`` on :class:`~mlnotes.diffusion.common.LinearPath` it is the data's own
    log-density; at ``t = 1`` there, that of ``N(0, I)``.
    """
    if not isinstance(denoiser, GaussianMixtureDenoiser):
        raise TypeError(f"denoiser must be a GaussianMixtureDenoiser, got {type(denoiser).__name__}")
    if not isinstance(path, NoisePath):
        raise TypeError(f"path must be a NoisePath, got {type(path).__name__}")
    t = _time_tensor(t, x).to(torch.float64)
    return denoiser.posterior(x, path.s(t).to(x.dtype), path.noise_scale(t).to(x.dtype))[2]


# --------------------------------------------------------------------------- flow matching as denoising
def flow_matching_loss(velocity: VelocityFn, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""Per-sample flow-matching loss on the straight path: :math:`\lVert v(x_t, t) - (\varepsilon - x_0)\rVert^2`.

    ``x_t = (1 - t) x0 + t eps``; `x0`, `eps` of shape ``(batch, dim)``, `t` of shape
    ``(batch,)``. Returns shape ``(batch,)``.
    """
    if x0.shape != eps.shape or x0.ndim != 2 or t.shape != x0.shape[:1]:
        raise ValueError("x0 and eps must share a shape (batch, dim) and t must have shape (batch,)")
    x_t = (1 - t[:, None]) * x0 + t[:, None] * eps
    return (velocity(x_t, t) - (eps - x0)).pow(2).sum(dim=1)


def flow_matching_denoising_weight(sigma: torch.Tensor | float) -> torch.Tensor:
    r"""The weight :math:`\lambda(\sigma) = (1 + \sigma)^2 / \sigma^2 = 1/t^2` that turns denoising into flow matching.

    On the straight path (``sigma = t / (1 - t)``), for the denoiser
    ``D = denoiser_from_velocity(v, LinearPath())``,
    :math:`\lVert v - (\varepsilon - x_0)\rVert^2 = \lambda(\sigma)\,\lVert D(x_0 + \sigma\varepsilon, \sigma) - x_0\rVert^2`.
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64) if not isinstance(sigma, torch.Tensor) else sigma
    if torch.isnan(sigma).any() or (sigma <= 0).any():
        raise ValueError("sigma must be > 0")
    return (1 + sigma) ** 2 / sigma**2


def weighted_denoising_loss(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    eps: torch.Tensor,
    sigma: torch.Tensor,
    weight: Callable[[torch.Tensor], torch.Tensor] = flow_matching_denoising_weight,
) -> torch.Tensor:
    r"""Per-sample weighted denoising loss :math:`\lambda(\sigma)\,\lVert D(x_0 + \sigma\varepsilon, \sigma) - x_0\rVert^2`.

    `x0`, `eps` of shape ``(batch, dim)``, `sigma` of shape ``(batch,)``; returns ``(batch,)``.
    The default weight is :func:`flow_matching_denoising_weight`.
    """
    if x0.shape != eps.shape or x0.ndim != 2 or sigma.shape != x0.shape[:1]:
        raise ValueError("x0 and eps must share a shape (batch, dim) and sigma must have shape (batch,)")
    x_hat = x0 + sigma[:, None] * eps
    return weight(sigma) * (denoiser(x_hat, sigma) - x0).pow(2).sum(dim=1)


# --------------------------------------------------------------------------- a discrete flow: affine coupling
class AffineCoupling(nn.Module):
    r"""RealNVP's affine coupling layer (Dinh et al. 2017) for vectors of shape ``(batch, dim)``.

    The input is split into a kept part :math:`x_a` and a changed part :math:`x_b`
    (the first ``dim // 2`` entries and the rest, or the other way round when `flip`):

    .. math:: y_a = x_a, \qquad y_b = x_b \odot e^{s(x_a)} + m(x_a), \qquad
              \log\lvert\det \partial y/\partial x\rvert = \textstyle\sum_j s_j(x_a).

    The Jacobian is triangular, so its log-determinant costs a sum, and the inverse
    is explicit, :math:`x_b = (y_b - m(y_a))\, e^{-s(y_a)}`, however complex the networks
    ``s`` (a ``tanh``-bounded scale) and ``m`` are.

    Parameters
    ----------
    dim : int
        ``>= 2``.
    hidden_dim : int, default 32
    flip : bool, default False
        Keep the second part instead of the first.
    generator : torch.Generator, optional
        Initial weights (uniform in PyTorch's default range); without it, the global RNG.
    """

    def __init__(self, dim: int, hidden_dim: int = 32, *, flip: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.dim = _positive_int(dim, "dim")
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2 for a coupling layer, got {dim}")
        hidden_dim = _positive_int(hidden_dim, "hidden_dim")
        self.flip = bool(flip)
        n_kept = dim // 2 if not flip else dim - dim // 2
        self.n_kept = n_kept
        self.net = nn.Sequential(nn.Linear(n_kept, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, 2 * (dim - n_kept)))
        if generator is not None:
            _uniform_init_(self.net, generator)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flip:
            return x[:, self.dim - self.n_kept:], x[:, : self.dim - self.n_kept]
        return x[:, : self.n_kept], x[:, self.n_kept:]

    def _join(self, kept: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        return torch.cat([changed, kept] if self.flip else [kept, changed], dim=1)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_scale, shift = self.net(kept).chunk(2, dim=1)
        return torch.tanh(raw_scale), shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y`` of shape ``(batch, dim)`` and ``log|det dy/dx|`` of shape ``(batch,)``."""
        kept, changed = self._split(x)
        scale, shift = self._scale_shift(kept)
        return self._join(kept, changed * torch.exp(scale) + shift), scale.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """``x`` with ``forward(x)[0] == y``."""
        kept, changed = self._split(y)
        scale, shift = self._scale_shift(kept)
        return self._join(kept, (changed - shift) * torch.exp(-scale))


class CouplingFlow(nn.Module):
    r"""A stack of :class:`AffineCoupling` layers (alternating halves) with a standard normal latent.

    :math:`\log p(x) = \log \mathcal{N}(f(x); 0, I) + \sum_\ell \log\lvert\det \partial f_\ell\rvert`,
    the change of variables, with :math:`f = f_L \circ \dots \circ f_1`.

    Parameters
    ----------
    dim : int
    n_layers : int, default 4
    hidden_dim : int, default 32
    generator : torch.Generator, optional
    """

    def __init__(self, dim: int, n_layers: int = 4, hidden_dim: int = 32, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        n_layers = _positive_int(n_layers, "n_layers")
        self.layers = nn.ModuleList(AffineCoupling(dim, hidden_dim, flip=bool(i % 2), generator=generator) for i in range(n_layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``z = f(x)``, shape ``(batch, dim)``, and ``log|det df/dx|``, shape ``(batch,)``."""
        log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """``x = f^{-1}(z)``: a sample of the flow when ``z ~ N(0, I)``."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` by the change of variables, shape ``(batch,)``."""
        z, log_det = self(x)
        return standard_normal_log_prob(z) + log_det


# --------------------------------------------------------------------------- exercises
def check_exercise_1(answer: float) -> bool:
    r"""Exercise 1: :math:`\int_0^1 \operatorname{tr} A_t\,dt` for Gaussian data with ``Sigma = [[2, 0.5], [0.5, 1]]``."""
    value = _as_float(answer)
    truth = -0.5 * math.log(2 * 1 - 0.5**2)
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        f"Correct: tr A_t = (1/2) d/dt log det C_t, so the integral is (1/2) log(det I / det Sigma) = {truth:.4f}.",
        "Not yet: write tr A_t as (1/2) d/dt log det C_t with C_0 = Sigma and C_1 = I.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: the variance of one Rademacher Hutchinson estimate of ``tr A`` for ``A = [[1, 2], [0, 3]]``."""
    value = _as_float(answer)
    truth = float(hutchinson_variance(torch.tensor([[1.0, 2.0], [0.0, 3.0]], dtype=torch.float64)))
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-6),
        f"Correct: e^T A e = tr A + (A_12 + A_21) e_1 e_2, and e_1 e_2 = +-1, so the variance is (2 + 0)^2 = {truth:g}.",
        "Not yet: expand e^T A e for e in {-1, +1}^2; which term is random?",
    )


def check_exercise_3(answer: float) -> bool:
    r"""Exercise 3: with ``t ~ U(0, 1)``, the density of the flow-matching loss's weight per unit ``sigma`` at ``sigma = 3``."""
    value = _as_float(answer)
    truth = 1.0 / 9.0
    return _report(
        value is not None and math.isclose(value, truth, rel_tol=1e-3),
        "Correct: dt/dsigma = 1/(1 + sigma)^2 times the weight (1 + sigma)^2/sigma^2 leaves 1/sigma^2 = 1/9.",
        "Not yet: multiply the weight 1/t^2 = (1 + sigma)^2/sigma^2 by the density of sigma = t/(1 - t) for uniform t.",
    )
