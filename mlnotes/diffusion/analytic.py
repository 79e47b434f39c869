r"""Exact denoisers: of a Gaussian mixture at every noise level (Part 6's known-answer problem) and of a finite data set.

For data :math:`x_0 \sim \sum_k w_k \mathcal{N}(\mu_k, \Sigma_k)` observed as
:math:`x = a x_0 + b \varepsilon` (``a = s``, ``b = s sigma`` on a path of
:mod:`mlnotes.diffusion.common`), every component stays Gaussian,
:math:`x \mid k \sim \mathcal{N}(a\mu_k, C_k)` with :math:`C_k = a^2\Sigma_k + b^2 I`, and
Gaussian conditioning gives the posterior means in closed form:

.. math::
    \mathbb{E}[x_0 \mid x] = \sum_k r_k(x)\big(\mu_k + a\Sigma_k C_k^{-1}(x - a\mu_k)\big),\qquad
    \mathbb{E}[\varepsilon \mid x] = \sum_k r_k(x)\, b\, C_k^{-1}(x - a\mu_k),

with responsibilities :math:`r_k \propto w_k \mathcal{N}(x; a\mu_k, C_k)` (computed with
log-sum-exp). With ``a = 1, b = sigma`` the first is the ideal denoiser
``D(x_hat, sigma)`` of EDM (Karras et al. 2022), the minimiser of the
denoising loss; the score, the noise prediction and the probability-flow
velocity follow from it exactly. Driving a sampler with it separates the
sampler's error from the network's.

:class:`EmpiricalDenoiser` is the limit of equal weights and vanishing covariances: the exact
denoiser of a finite set of points, which a network trained long enough on a small training set
approaches, and whose samplers return copies of those points.

Chapters: all of ``book/diffusion/`` (first in ``ddpm_ddim``).
"""

from __future__ import annotations

import torch

from mlnotes.datasets import GaussianMixture
from mlnotes.diffusion.common import NoisePath, _bcast, _check_path, _check_sigma, _per_sample

__all__ = ["EmpiricalDenoiser", "GaussianMixtureDenoiser", "mixture_of_8"]


class GaussianMixtureDenoiser:
    """Exact ``D(x_hat, sigma) = E[x0 | x0 + sigma eps = x_hat]`` of a :class:`~mlnotes.datasets.GaussianMixture`.

    Works in the dtype and on the device of its inputs (float64 for checks,
    float32 or bfloat16 for speed; bfloat16 inputs are computed in float32). The
    covariances may be full.

    Parameters
    ----------
    mixture : GaussianMixture
        The data distribution.

    Examples
    --------
    >>> import torch
    >>> denoiser = GaussianMixtureDenoiser(mixture_of_8())
    >>> denoiser(torch.zeros(3, 2), torch.full((3,), 1.0)).shape
    torch.Size([3, 2])
    """

    def __init__(self, mixture: GaussianMixture) -> None:
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a mlnotes.datasets.GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture
        means = torch.as_tensor(mixture.means, dtype=torch.float64)
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.as_tensor(mixture.covariances, dtype=torch.float64))
        self._float64 = (means, eigenvalues, eigenvectors, torch.log(torch.as_tensor(mixture.weights, dtype=torch.float64)))
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, ...]] = {}

    def __repr__(self) -> str:
        return f"GaussianMixtureDenoiser({self.mixture!r})"

    @property
    def dim(self) -> int:
        return self.mixture.dim

    def _params(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = (dtype, device)
        if key not in self._cache:
            self._cache[key] = tuple(p.to(dtype=dtype, device=device) for p in self._float64)
        return self._cache[key]

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")

    def posterior(
        self, x: torch.Tensor, signal: torch.Tensor | float, noise: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior means of ``x0`` and ``eps`` given ``x = signal * x0 + noise * eps``, and ``log p(x)``.

        Parameters
        ----------
        x : torch.Tensor, shape (batch, dim)
        signal, noise : float or torch.Tensor of shape (batch,)
            ``a >= 0`` and ``b >= 0``, not both zero (``a = 0``: pure noise; ``b = 0``: clean data).

        Returns
        -------
        x0_mean, eps_mean : torch.Tensor, shape (batch, dim)
        log_density : torch.Tensor, shape (batch,)
        """
        self._check_x(x)
        work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xw = x.to(work)
        a, b = _per_sample(signal, xw), _per_sample(noise, xw)
        if (a < 0).any() or (b < 0).any() or torch.isnan(a).any() or torch.isnan(b).any():
            raise ValueError("signal and noise must be >= 0")
        means, eigenvalues, eigenvectors, log_weights = self._params(work, x.device)
        a2, b2 = (a**2)[:, None, None], (b**2)[:, None, None]
        variances = a2 * eigenvalues[None] + b2  # eigenvalues of C_k, (batch, k, d)
        # Coordinates of x - a mu_k in the eigenbasis of Sigma_k (which is also C_k's).
        diff = xw[:, None, :] - a[:, None, None] * means[None]
        z = torch.einsum("kde,nkd->nke", eigenvectors, diff)
        log_terms = log_weights - 0.5 * (
            (z**2 / variances).sum(-1) + torch.log(variances).sum(-1) + self.dim * torch.log(torch.tensor(2 * torch.pi, dtype=work))
        )
        log_density = torch.logsumexp(log_terms, dim=1)
        resp = torch.softmax(log_terms, dim=1)
        x0_k = means[None] + torch.einsum("kde,nke->nkd", eigenvectors, a[:, None, None] * eigenvalues[None] * z / variances)
        eps_k = torch.einsum("kde,nke->nkd", eigenvectors, b[:, None, None] * z / variances)
        x0_mean = torch.einsum("nk,nkd->nd", resp, x0_k)
        eps_mean = torch.einsum("nk,nkd->nd", resp, eps_k)
        return x0_mean.to(x.dtype), eps_mean.to(x.dtype), log_density.to(x.dtype)

    def __call__(self, x_hat: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``D(x_hat, sigma)``, shape (batch, dim); ``sigma >= 0`` (``D(x, 0) = x``)."""
        self._check_x(x_hat)
        return self.posterior(x_hat, 1.0, sigma)[0]

    def eps(self, x_hat: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``E[eps | x_hat]``, computed directly (no division by ``sigma``)."""
        self._check_x(x_hat)
        return self.posterior(x_hat, 1.0, sigma)[1]

    def score(self, x_hat: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``grad log p(x_hat; sigma) = (D - x_hat) / sigma^2``, the score of the mixture noised by ``sigma > 0``."""
        self._check_x(x_hat)
        sigma = _per_sample(sigma, x_hat)
        _check_sigma(sigma)
        return -self.eps(x_hat, sigma) / _bcast(sigma, x_hat)

    def log_prob(self, x_hat: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``log p(x_hat; sigma)``, the exact log-density of ``x0 + sigma eps``, shape (batch,)."""
        self._check_x(x_hat)
        return self.posterior(x_hat, 1.0, sigma)[2]

    def velocity(self, x: torch.Tensor, t: torch.Tensor | float, path: NoisePath) -> torch.Tensor:
        """Exact probability-flow velocity ``E[dx/dt | x] = s' E[x0|x] + (s sigma)' E[eps|x]`` on `path`.

        Finite wherever the path's ``s`` and ``s sigma`` are (on :class:`LinearPath` also at
        ``t = 1``, where it is ``x - E[x0]``), so it drives :func:`mlnotes.diffusion.common.rectified_flow_euler`.
        """
        _check_path(path)
        self._check_x(x)
        t = _per_sample(t, x).to(torch.float64)
        signal, noise = path.s(t), path.noise_scale(t)
        x0, eps, _ = self.posterior(x, signal.to(x.dtype), noise.to(x.dtype))
        return _bcast(path.ds_dt(t), x) * x0 + _bcast(path.dnoise_scale_dt(t), x) * eps


class EmpiricalDenoiser:
    r"""Exact ``D(x_hat, sigma)`` of a finite data set: the ideal denoiser of a training set.

    For data drawn uniformly from the points :math:`y_1, \dots, y_n`, the posterior mean is a
    softmax-weighted average of them,

    .. math::
        D(\hat x, \sigma) = \sum_i w_i y_i,\qquad
        w_i \propto \exp\!\big(-\lVert \hat x - y_i \rVert^2 / 2\sigma^2\big),

    the minimiser of the denoising loss on those points. A sampler driven by it ends on one of
    the points (as ``sigma -> 0`` the weights concentrate on the nearest), so it draws only
    copies of its data; a network trained long enough on a small training set tends to it.

    Works on points of any shape, in the dtype and on the device of its inputs (bfloat16 and
    float16 inputs are computed in float32). Memory: one ``(batch, n)`` matrix of distances.

    Parameters
    ----------
    data : torch.Tensor, shape (n, ...)
        The points, floating point and finite, ``n >= 1``; each point may have any shape.

    Examples
    --------
    >>> import torch
    >>> denoiser = EmpiricalDenoiser(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    >>> denoiser(torch.tensor([[1.9, 0.1]]), 0.01)
    tensor([[2., 0.]])
    """

    def __init__(self, data: torch.Tensor) -> None:
        if not isinstance(data, torch.Tensor) or not data.is_floating_point():
            raise TypeError(f"data must be a floating-point torch.Tensor, got {type(data).__name__}")
        if data.ndim < 2 or data.shape[0] == 0 or data[0].numel() == 0:
            raise ValueError(f"data must have shape (n, *shape) with n >= 1 and non-empty points, got {tuple(data.shape)}")
        if not torch.isfinite(data).all():
            raise ValueError("data must be finite (found NaN or infinity)")
        self.shape = tuple(data.shape[1:])
        self._float64 = data.detach().flatten(1).to(torch.float64)
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"EmpiricalDenoiser(n={self._float64.shape[0]}, shape={self.shape})"

    def __len__(self) -> int:
        return self._float64.shape[0]

    def _points(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (dtype, device)
        if key not in self._cache:
            flat = self._float64.to(dtype=dtype, device=device)
            self._cache[key] = (flat, (flat**2).sum(1))
        return self._cache[key]

    def __call__(self, x_hat: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``D(x_hat, sigma)``: `x_hat` of shape ``(batch, *shape)``, ``sigma > 0`` a float or shape ``(batch,)``."""
        if not isinstance(x_hat, torch.Tensor) or not x_hat.is_floating_point():
            raise TypeError(f"x_hat must be a floating-point torch.Tensor, got {type(x_hat).__name__}")
        if tuple(x_hat.shape[1:]) != self.shape or x_hat.ndim != len(self.shape) + 1:
            raise ValueError(f"x_hat must have shape (batch, {', '.join(map(str, self.shape))}), got {tuple(x_hat.shape)}")
        work = torch.float32 if x_hat.dtype in (torch.float16, torch.bfloat16) else x_hat.dtype
        x = x_hat.flatten(1).to(work)
        sigma = _per_sample(sigma, x)
        if sigma.shape != (x.shape[0],):
            raise ValueError(f"sigma must be a float or have shape ({x.shape[0]},), got {tuple(sigma.shape)}")
        _check_sigma(sigma)
        flat, sq_norms = self._points(work, x.device)
        with torch.autocast(x.device.type, enabled=False):  # distances in `work` precision, also under autocast
            # Squared distances by expansion (one matrix product), clamped at 0 against rounding.
            d2 = ((x**2).sum(1, keepdim=True) - 2 * x @ flat.T + sq_norms).clamp_min(0)
            weights = torch.softmax(-d2 / (2 * sigma[:, None] ** 2), dim=1)
            out = weights @ flat
        return out.reshape(x_hat.shape).to(x_hat.dtype)


def mixture_of_8(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """The part's 2-D test distribution: eight equal Gaussians of standard deviation `std` on a circle of `radius`."""
    return GaussianMixture.ring(8, radius=radius, std=std)
