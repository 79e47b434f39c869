"""Part 6 benchmark: every sampler driven by the exact denoiser of the 2-D mixture of 8 Gaussians.

With a perfect model (:class:`mlnotes.diffusion.analytic.GaussianMixtureDenoiser`)
the only error left is the sampler's. For each sampler and number of steps this
draws ``--n`` samples per seed, measures the sliced Wasserstein-2 distance
(:func:`mlnotes.metrics.sliced_wasserstein`, 128 directions) to an independent
sample of the true mixture of the same size and the squared MMD (Gaussian kernel,
bandwidth 0.5, first ``--mmd-n`` points), averaged over ``--seeds`` seeds, and prints
them against the number of network evaluations (NFE) in one table, with the
noise floor (:func:`mlnotes.metrics.noise_floor`: two independent true samples of
the same size, same metric, ``--floor-repeats`` pairs) beside them. Then it checks
the two claims of the Part 6 issue on the mean sliced W2:

1. DDIM (eta = 0) with 50 steps is within 1.1x of DDPM ancestral sampling with 1000 steps;
2. EDM's Heun sampler with at most 35 NFE (18 steps) is at least as good as DDIM with 100 steps.

Every sampler of a seed starts from the same ``torch.Generator`` seed, and all are
compared with the same reference sample and projection directions, so their
differences are not blurred by independent noise. Distances at the noise floor
cannot rank samplers: the table says how far above the floor each one is.

Run: ``python benchmarks/diffusion_samplers.py [--n 8000] [--seeds 5] [--mmd-n 2000]
[--floor-repeats 20] [--json results.json]`` (one PyTorch thread; about two and a half
minutes on a 2-core CPU).
Exit status 1 when a claim fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from mlnotes.diffusion.analytic import GaussianMixtureDenoiser, mixture_of_8
from mlnotes.diffusion.common import (
    DiscreteVPPath,
    EDMPath,
    LinearPath,
    Samples,
    VPPath,
    ddim,
    ddpm_ancestral,
    euler_maruyama_reverse_sde,
    euler_ode,
    heun_ode,
    rectified_flow_euler,
)
from mlnotes.metrics import mmd_rbf, noise_floor, sliced_wasserstein

MMD_BANDWIDTH = 0.5
N_PROJECTIONS = 128

Run = Callable[[tuple[int, int], torch.Generator], Samples]


def samplers(denoiser: GaussianMixtureDenoiser) -> dict[tuple[str, int], Run]:
    """(family, steps) -> a function of (shape, generator)."""
    ddpm_path, vp, edm, linear = DiscreteVPPath(1000), VPPath(), EDMPath(), LinearPath()
    velocity = lambda x, t: denoiser.velocity(x, t, linear)  # noqa: E731
    table: dict[tuple[str, int], Run] = {}
    for n in (1000, 250, 100, 50):
        table["DDPM ancestral", n] = lambda shape, g, n=n: ddpm_ancestral(denoiser, ddpm_path, n, shape, g)
    for n in (10, 20, 50, 100):
        table["DDIM eta=0", n] = lambda shape, g, n=n: ddim(denoiser, ddpm_path, n, shape, g)
    table["DDIM eta=1", 100] = lambda shape, g: ddim(denoiser, ddpm_path, 100, shape, g, eta=1.0)
    for n in (100, 250, 1000):
        table["Euler-Maruyama VP-SDE", n] = lambda shape, g, n=n: euler_maruyama_reverse_sde(denoiser, vp, n, shape, g)
    for n in (10, 18, 50):
        table["Euler PF-ODE (EDM)", n] = lambda shape, g, n=n: euler_ode(denoiser, edm, n, shape, g)
    for n in (5, 10, 18, 25, 35):
        table["Heun PF-ODE (EDM)", n] = lambda shape, g, n=n: heun_ode(denoiser, edm, n, shape, g)
    for n in (1, 5, 10, 20, 50):
        table["Rectified flow Euler", n] = lambda shape, g, n=n: rectified_flow_euler(velocity, n, shape, g)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8000, help="samples per sampler and seed")
    parser.add_argument("--seeds", type=int, default=5, help="independent repetitions")
    parser.add_argument("--mmd-n", type=int, default=2000, help="points used for the MMD (quadratic cost)")
    parser.add_argument("--floor-repeats", type=int, default=20, help="pairs of true samples for the noise floor")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()

    mixture = mixture_of_8()
    denoiser = GaussianMixtureDenoiser(mixture)
    table = samplers(denoiser)
    shape = (args.n, 2)
    sw: dict[tuple[str, int], list[float]] = {key: [] for key in table}
    mmd: dict[tuple[str, int], list[float]] = {key: [] for key in table}
    nfe: dict[tuple[str, int], int] = {}
    def truth(n: int, rng: np.random.Generator) -> np.ndarray:
        return mixture.sample(n, rng=rng).X

    floor_sw = noise_floor(lambda x, y: sliced_wasserstein(x, y, N_PROJECTIONS, rng=0), truth, args.n,
                           repeats=args.floor_repeats, rng=20_000).values.tolist()
    floor_mmd = noise_floor(lambda x, y: mmd_rbf(x, y, MMD_BANDWIDTH), truth, args.mmd_n,
                            repeats=args.floor_repeats, rng=30_000).values.tolist()
    for seed in range(args.seeds):
        reference = mixture.sample(args.n, rng=10_000 + seed).X
        for key, run in table.items():
            samples, nfe[key] = run(shape, torch.Generator().manual_seed(seed))
            x = samples.double().numpy()
            sw[key].append(sliced_wasserstein(x, reference, N_PROJECTIONS, rng=seed))
            mmd[key].append(mmd_rbf(x[: args.mmd_n], reference[: args.mmd_n], MMD_BANDWIDTH))

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    def sem(values: list[float]) -> float:
        return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0

    fsw, fmmd = mean(floor_sw), mean(floor_mmd)
    print(f"exact denoiser, mixture of 8 Gaussians (radius 2, std 0.2); {args.n} samples x {args.seeds} seeds;"
          f" sliced W2 ({N_PROJECTIONS} directions) and MMD^2 (bandwidth {MMD_BANDWIDTH}, {args.mmd_n} points)")
    print(f"{'sampler':<24}{'steps':>6}{'NFE':>6}{'sliced W2':>12}{'+- sem':>9}{'/ floor':>9}{'MMD^2 x1e4':>12}{'/ floor':>9}")
    print(f"{'noise floor (truth)':<24}{'':>6}{'':>6}{fsw:>12.4f}{sem(floor_sw):>9.4f}{1.0:>9.2f}"
          f"{fmmd * 1e4:>12.2f}{1.0:>9.2f}")
    for key in table:
        family, steps = key
        print(f"{family:<24}{steps:>6}{nfe[key]:>6}{mean(sw[key]):>12.4f}{sem(sw[key]):>9.4f}"
              f"{mean(sw[key]) / fsw:>9.2f}{mean(mmd[key]) * 1e4:>12.2f}{mean(mmd[key]) / fmmd:>9.2f}")

    ddpm_1000, ddim_50, ddim_100 = mean(sw["DDPM ancestral", 1000]), mean(sw["DDIM eta=0", 50]), mean(sw["DDIM eta=0", 100])
    heun = max((key for key in table if key[0] == "Heun PF-ODE (EDM)" and nfe[key] <= 35), key=lambda k: nfe[k])
    heun_sw = mean(sw[heun])
    claim_1 = ddim_50 <= 1.1 * ddpm_1000
    claim_2 = heun_sw <= ddim_100
    # Paired per-seed differences: the same reference and directions, so most of the sampling noise cancels.
    diff_1 = np.array(sw["DDIM eta=0", 50]) - np.array(sw["DDPM ancestral", 1000])
    diff_2 = np.array(sw[heun]) - np.array(sw["DDIM eta=0", 100])
    print()
    print(f"claim 1: DDIM 50 steps / DDPM 1000 steps = {ddim_50:.4f} / {ddpm_1000:.4f} = {ddim_50 / ddpm_1000:.3f}"
          f" (<= 1.1: {'yes' if claim_1 else 'NO'}); paired difference {diff_1.mean():+.4f} +- {sem(diff_1.tolist()):.4f}")
    print(f"claim 2: Heun {nfe[heun]} NFE / DDIM 100 steps = {heun_sw:.4f} / {ddim_100:.4f} = {heun_sw / ddim_100:.3f}"
          f" (<= 1: {'yes' if claim_2 else 'NO'}); paired difference {diff_2.mean():+.4f} +- {sem(diff_2.tolist()):.4f}")
    print(f"noise floor {fsw:.4f}: DDPM 1000 at {ddpm_1000 / fsw:.2f}x, DDIM 50 at {ddim_50 / fsw:.2f}x, "
          f"DDIM 100 at {ddim_100 / fsw:.2f}x, Heun at {heun_sw / fsw:.2f}x the floor")
    print("(ratios below 1 to the floor are within its noise: the floor's own standard error is printed beside it;"
          " the paired differences use the same reference sample and directions, hence their smaller errors)")
    print(f"wall time {time.perf_counter() - start:.0f} s")

    if args.json:
        with open(args.json, "w") as file:
            json.dump({
                "n": args.n, "seeds": args.seeds, "mmd_n": args.mmd_n, "mmd_bandwidth": MMD_BANDWIDTH,
                "floor": {"sliced_w2": floor_sw, "mmd2": floor_mmd},
                "samplers": [{"family": f, "steps": s, "nfe": nfe[f, s], "sliced_w2": sw[f, s], "mmd2": mmd[f, s]}
                             for f, s in table],
                "claims": {"ddim50_within_1.1x_ddpm1000": bool(claim_1), "heun_le_ddim100": bool(claim_2)},
            }, file, indent=1)
    return 0 if claim_1 and claim_2 else 1


if __name__ == "__main__":
    sys.exit(main())
