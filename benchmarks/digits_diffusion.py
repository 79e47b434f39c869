"""Part 6 benchmark: a UNet diffusion model on the digits, Fréchet distance against NFE for four samplers.

Trains :class:`mlnotes.diffusion.digits.TinyUNet` with EDM's loss and preconditioning
(:func:`mlnotes.diffusion.digits.train_digits_denoiser`) on scikit-learn's digits, 8x8
(``--preset small``, the CPU configuration of the book) or upsampled to 32x32
(``--preset full``, the GPU configuration: 3.8M parameters, bf16, EMA), then samples
it with DDIM (DDPM's schedule, eta = 0), Euler and Heun on EDM's noise levels, and
rectified-flow Euler, at several numbers of network evaluations (NFE), and prints a table
of the Fréchet distance in the features of a small digits classifier
(:func:`mlnotes.metrics.fit_digits_classifier`, trained here in seconds on the CPU, no
files) against the reference half of the digits, the classifier's mean confidence, the
entropy of the predicted classes and the distance to the nearest training digit, beside the
same numbers for real training digits (the noise floor), real digits the model never saw and
pure noise; then the training time and throughput. The rectified-flow column runs on the EDM denoiser's exact
velocity on the straight path, unless ``--rf-train`` also trains a second network with the
rectified-flow objective (same configuration and budget) for it.

Runs (from the repository root; one GPU unless launched by torchrun)::

    python benchmarks/digits_diffusion.py --preset full --json digits_full.json --grid digits_full.png
    python benchmarks/digits_diffusion.py --preset full --no-bf16 --steps 3000 --json digits_fp32.json   # float32
    python benchmarks/digits_diffusion.py --preset full --steps 3000 --json digits_bf16.json             # bf16, same steps
    torchrun --standalone --nproc_per_node=2 benchmarks/digits_diffusion.py --preset full --json digits_ddp.json
    python benchmarks/digits_diffusion.py --preset small --device cpu          # the book's CPU model (under a minute)

Options: ``--steps``, ``--batch-size``, ``--time-limit`` (seconds; the full preset stops
after 480), ``--compile`` (``torch.compile``; compilation counts in the training time),
``--p-mean``/``--p-std`` (EDM's training noise levels), ``--rf-train``, ``--samples``,
``--nfes``, ``--seed``, ``--threads`` (CPU threads per process, default 1).

Under torchrun (``WORLD_SIZE`` set) the process group is initialised from the environment
(NCCL on CUDA, gloo on CPU), each rank trains on ``cuda:LOCAL_RANK`` with its share of every
batch, and rank 0 evaluates and writes the outputs. ``--time-limit`` stops training when
exceeded (all ranks together) and the steps done are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mlnotes.diffusion.digits import SAMPLERS, DigitsConfig, evaluate_samplers, sample_digits, train_digits_denoiser
from mlnotes.metrics import fit_digits_classifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("small", "full"), default=None,
                        help="small: 8x8 on CPU; full: 32x32 UNet on a GPU (default: full with CUDA, else small)")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's training steps")
    parser.add_argument("--batch-size", type=int, default=None, help="override the preset's batch (all ranks together)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast for training and sampling (default: the preset's, on for full)")
    parser.add_argument("--compile", action="store_true", help="train through torch.compile (compilation counts in the training time)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="stop training after this many seconds (default: the preset's; 0 means none)")
    parser.add_argument("--objective", choices=("edm", "rectified_flow"), default="edm",
                        help="objective of the main network (default edm)")
    parser.add_argument("--rf-train", action="store_true",
                        help="also train a rectified-flow network for the rectified-flow column")
    parser.add_argument("--samples", type=int, default=898, help="images per sampler and NFE (default 898: the floor's size)")
    parser.add_argument("--nfes", type=str, default=None, help="comma-separated NFE budgets (default small 5,10,20,35; full 5,10,20,35,50,100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=str, default=None, help="cpu or cuda (default: cuda if available); ignored by torchrun ranks")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1: fastest for these small networks)")
    parser.add_argument("--p-mean", type=float, default=None, help="override EDM's P_mean (log-normal training noise levels)")
    parser.add_argument("--p-std", type=float, default=None, help="override EDM's P_std")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--grid", type=Path, default=None, help="write a PNG grid of Heun samples here")
    return parser.parse_args(argv)


def setup_distributed(requested: str | None) -> tuple[torch.device, int, int]:
    """Init the process group from torchrun's environment when WORLD_SIZE is set; return device, rank, world size."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available() and requested != "cpu":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            dist.init_process_group("nccl")
        else:
            device = torch.device("cpu")
            dist.init_process_group("gloo")
        return device, dist.get_rank(), dist.get_world_size()
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    return device, 0, 1


def make_config(args: argparse.Namespace, device: torch.device) -> DigitsConfig:
    preset = args.preset or ("full" if device.type == "cuda" else "small")
    config = DigitsConfig.full() if preset == "full" else DigitsConfig.small()
    changes: dict[str, object] = {"objective": args.objective}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if args.bf16 is not None:
        changes["amp_bf16"] = args.bf16
    if args.compile:
        changes["compile"] = True
    if args.p_mean is not None:
        changes["p_mean"] = args.p_mean
    if args.p_std is not None:
        changes["p_std"] = args.p_std
    if args.time_limit is not None:
        changes["time_limit_s"] = args.time_limit if args.time_limit > 0 else None
    if preset == "small" and not config.log_every:
        changes["log_every"] = 250
    return replace(config, **changes)


def save_grid(images: torch.Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = int(np.sqrt(len(images)))
    pad = max(1, images.shape[-1] // 8)  # background between the digits
    tiles = np.pad(images[: n * n, 0].float().cpu().numpy(), ((0, 0), (0, pad), (0, pad)), constant_values=-1.0)
    side = tiles.shape[-1]
    grid = tiles.reshape(n, n, side, side).transpose(0, 2, 1, 3).reshape(n * side, n * side)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(grid, cmap="gray_r", vmin=-1, vmax=1)
    ax.set_axis_off()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device, rank, world = setup_distributed(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    config = make_config(args, device)
    nfes = [int(v) for v in args.nfes.split(",")] if args.nfes else ([5, 10, 20, 35] if config.size == 8 else [5, 10, 20, 35, 50, 100])
    n_params = sum(p.numel() for p in config.build_network().parameters())
    if rank == 0:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"device {device} ({name}), world size {world}, torch {torch.__version__}")
        print(f"config {config.to_dict()}")
        print(f"UNet parameters {n_params:,}")

    fits = {}
    objectives = [config.objective] + (["rectified_flow"] if args.rf_train and config.objective != "rectified_flow" else [])
    for objective in objectives:
        generator = torch.Generator(device).manual_seed(args.seed)
        if rank == 0:
            print(f"training ({objective}) ...", flush=True)
        fits[objective] = train_digits_denoiser(replace(config, objective=objective), generator, device)
        fit = fits[objective]
        if rank == 0:
            print(f"{objective}: {fit.steps_done} steps in {fit.train_seconds:.1f} s, {fit.images_per_second:,.0f} images/s "
                  f"({fit.images_per_second / world:,.0f} per rank), final loss {fit.losses[-100:].mean():.4f}", flush=True)

    if rank == 0:
        fit = fits[config.objective]
        velocity_model = fits["rectified_flow"].velocity_model if "rectified_flow" in fits else None
        start = time.perf_counter()
        classifier = fit_digits_classifier(seed=args.seed)
        print(f"digits classifier: held-out accuracy {classifier.test_accuracy_:.4f} ({time.perf_counter() - start:.1f} s)")
        start = time.perf_counter()
        evaluation = evaluate_samplers(fit.denoiser, nfes, args.samples, classifier, torch.Generator(device).manual_seed(args.seed + 1),
                                       size=config.size, velocity_model=velocity_model, amp_bf16=config.amp_bf16)
        eval_seconds = time.perf_counter() - start
        rf_source = "a network trained as rectified flow" if velocity_model is not None or config.objective == "rectified_flow" \
            else "the EDM denoiser's exact velocity on the straight path"
        print(f"\nFrechet distance (classifier features) against NFE, {args.samples} samples each; rectified flow uses {rf_source}")
        print(evaluation.table())
        print(f"pure noise {evaluation.noise.frechet:.3f}")
        print("\nFrechet by sampler (NFE: value):")
        for sampler in SAMPLERS:
            print(f"  {sampler:<15} " + "  ".join(f"{nfe}: {v:.3f}" for nfe, v in evaluation.frechet(sampler).items()))
        print(f"\ntraining {fit.train_seconds:.1f} s for {fit.steps_done} steps ({fit.images_per_second:,.0f} images/s), evaluation {eval_seconds:.1f} s")
        if args.json is not None:
            result = {
                "command": (f"torchrun --standalone --nproc_per_node={world} " if world > 1 else "python ")
                           + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
                "date": time.strftime("%Y-%m-%d", time.gmtime()),
                "config": config.to_dict(), "device": str(device), "world_size": world,
                "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU", "torch": torch.__version__, "parameters": n_params,
                "classifier_accuracy": classifier.test_accuracy_, "rectified_flow_source": rf_source,
                "training": {k: {"steps_done": f.steps_done, "seconds": f.train_seconds, "images_per_second": f.images_per_second,
                                 "final_loss": float(f.losses[-100:].mean())} for k, f in fits.items()},
                "evaluation_seconds": eval_seconds, "evaluation": evaluation.to_dict(),
            }
            args.json.write_text(json.dumps(result, indent=2))
            print(f"wrote {args.json}")
        if args.grid is not None:
            images, _ = sample_digits(fit.denoiser, "heun", 35, 100, torch.Generator(device).manual_seed(args.seed + 2),
                                      size=config.size, amp_bf16=config.amp_bf16)
            save_grid(images, args.grid)
            print(f"wrote {args.grid}")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
