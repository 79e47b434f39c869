"""Part 6 · Diffusion and flow models: DDPM/DDIM, score models, SDEs, rectified flow, CNFs, EDM.

Shared pieces live here once: :mod:`mlnotes.diffusion.common` (the noising path
``x = s(t) (x0 + sigma(t) eps)``, the denoiser interface, exact conversions between
x0-, epsilon-, score- and velocity-prediction, and every sampler of the part) and
:mod:`mlnotes.diffusion.analytic` (the exact denoiser of a Gaussian mixture, the
part's known-answer problem). Each chapter's code is in its own module.
"""
