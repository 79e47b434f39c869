"""Tests of mlnotes.diffusion.digits: data, the UNet, EDM / rectified-flow training (also under DDP), sampling and evaluation.

The known-answer problem for images is the exact denoiser of the training set itself (a
mixture of point masses at the 1,797 digits): every sampler driven by it must end on real
digits, so the evaluation must put it at the noise floor of real digits.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mlnotes.diffusion.analytic import EmpiricalDenoiser
from mlnotes.diffusion.common import EDMPrecond, LinearPath, edm_coefficients, velocity_model_from_denoiser
from mlnotes.diffusion.digits import (
    SAMPLERS,
    DigitsConfig,
    DigitsEvaluation,
    ResBlock,
    TinyUNet,
    _ClampedLinearVelocity,
    digits_images,
    edm_loss,
    evaluate_samplers,
    rectified_flow_loss,
    sample_digits,
    train_digits_denoiser,
)
from mlnotes.metrics import DigitsClassifier, fit_digits_classifier

REPO = Path(__file__).resolve().parents[2]
TINY = DigitsConfig(size=8, base_channels=8, channel_mults=(1, 2), groups=2, steps=40, batch_size=32, lr=5e-3, warmup_steps=5)


@pytest.fixture(scope="module")
def classifier() -> DigitsClassifier:
    return fit_digits_classifier(seed=0, epochs=8)


# --------------------------------------------------------------------------- data
def test_digits_images_sizes_range_and_order() -> None:
    small, big = digits_images(8), digits_images(32, dtype=torch.float64)
    assert small.shape == (1797, 1, 8, 8) and small.dtype == torch.float32
    reference, train = digits_images(8, subset="reference"), digits_images(8, subset="train")
    assert reference.shape[0] == 899 and train.shape[0] == 898
    assert torch.equal(torch.cat([reference, train]).flatten(1).sort(dim=0).values, small.flatten(1).sort(dim=0).values)
    assert big.shape == (1797, 1, 32, 32) and big.dtype == torch.float64
    assert small.min() == -1.0 and small.max() == 1.0 and big.min() >= -1.0 and big.max() <= 1.0
    # Bilinear upsampling keeps each image's mean up to the border effect.
    torch.testing.assert_close(big.mean(dim=(1, 2, 3)).float(), small.mean(dim=(1, 2, 3)), atol=0.05, rtol=0)
    shuffled = digits_images(8, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(shuffled, small)
    assert torch.equal(shuffled.flatten(1).sort(dim=0).values, small.flatten(1).sort(dim=0).values)


# --------------------------------------------------------------------------- the network
@pytest.mark.parametrize(("size", "mults", "dtype"), [(8, (1, 2), torch.float32), (8, (1,), torch.float64), (32, (1, 2, 2), torch.float32), (32, (1, 2, 2, 2), torch.float64)])
def test_unet_shapes_dtypes_and_preconditioning(size: int, mults: tuple[int, ...], dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    net = TinyUNet(1, 8, mults, 1, 4, generator=g).to(dtype)
    x = torch.randn(3, 1, size, size, generator=g, dtype=dtype)
    c = torch.randn(3, generator=g, dtype=dtype)
    out = net(x, c)
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.equal(out, torch.zeros_like(out)), "the output convolution starts at zero"
    denoiser = EDMPrecond(net, 0.75)
    sigma = torch.tensor([0.01, 1.0, 50.0], dtype=dtype)
    c_skip = edm_coefficients(sigma, 0.75)[0]
    torch.testing.assert_close(denoiser(x, sigma), c_skip[:, None, None, None] * x)  # F = 0 at initialisation
    with torch.no_grad():  # once the zero-initialised layers are not zero, F depends on the level
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=dtype))
    assert not torch.allclose(net(x, c), net(x, c + 1.0))
    assert net(x, 0.3).shape == x.shape  # a scalar level is broadcast


def test_unet_seeded_init_and_resblock_identity() -> None:
    a = TinyUNet(generator=torch.Generator().manual_seed(1))
    b = TinyUNet(generator=torch.Generator().manual_seed(1))
    c = TinyUNet(generator=torch.Generator().manual_seed(2))
    pairs = list(zip(a.parameters(), b.parameters(), c.parameters()))
    assert all(torch.equal(p, q) for p, q, _ in pairs)
    assert any(not torch.equal(p, r) for p, _, r in pairs)
    block = ResBlock(8, 8, 16, 4)
    torch.nn.init.zeros_(block.conv2.weight)
    torch.nn.init.zeros_(block.conv2.bias)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(block(x, torch.randn(2, 16)), x)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: TinyUNet(base_channels=12, groups=8), ValueError, "divisible by groups"),
        (lambda: TinyUNet(channel_mults=()), ValueError, "channel_mults"),
        (lambda: TinyUNet(base_channels=0), ValueError, "base_channels"),
        (lambda: TinyUNet(channel_mults=(1, 2, 2))(torch.zeros(1, 1, 6, 6), 0.0), ValueError, "divisible by 2"),
        (lambda: TinyUNet()(torch.zeros(1, 3, 8, 8), 0.0), ValueError, "x must have shape"),
        (lambda: digits_images(12), ValueError, "size"),
        (lambda: digits_images(8, dtype=torch.int64), TypeError, "dtype"),
        (lambda: digits_images(8, subset="test"), ValueError, "subset"),
    ],
)
def test_unet_and_data_bad_inputs(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- losses
def test_edm_loss_and_rectified_flow_loss_by_hand() -> None:
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64), torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.5, 2.0, 20.0], dtype=torch.float64)
    denoiser = EDMPrecond(lambda x, c: 0.1 * x + c[:, None, None, None], 0.75)
    by_hand = 0.0
    for i in range(4):
        weight = (sigma[i] ** 2 + 0.75**2) / (sigma[i] * 0.75) ** 2
        d = denoiser(x0[i : i + 1] + sigma[i] * noise[i : i + 1], sigma[i : i + 1])
        by_hand += float(weight * ((d - x0[i : i + 1]) ** 2).mean()) / 4
    assert float(edm_loss(denoiser, x0, sigma, noise)) == pytest.approx(by_hand, rel=1e-12)
    t = torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=torch.float64)

    def model(x, s):
        return 0.5 * x * s[:, None, None, None]

    expected = np.mean([float((((noise[i] - x0[i]) - model(((1 - t[i]) * x0[i] + t[i] * noise[i])[None], t[i : i + 1])[0]) ** 2).mean()) for i in range(4)])
    assert float(rectified_flow_loss(model, x0, t, noise)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="sigma must be"):
        edm_loss(denoiser, x0, sigma[:2], noise)


# --------------------------------------------------------------------------- training
def fixed_batch_loss(denoiser: torch.nn.Module, size: int = 8, device: str = "cpu") -> float:
    """EDM's loss on 256 digits at fixed noise levels and noise: a less noisy measure than the training losses."""
    g = torch.Generator().manual_seed(99)
    x0 = digits_images(size)[:256]
    sigma = torch.exp(-1.2 + 1.2 * torch.randn(256, generator=g))
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return float(edm_loss(denoiser, x0.to(device), sigma.to(device), noise.to(device)))


def test_training_smoke_determinism_and_ema() -> None:
    fit = train_digits_denoiser(TINY, torch.Generator().manual_seed(0))
    assert fit.steps_done == 40 and fit.losses.shape == (40,) and fit.world_size == 1 and fit.velocity_model is None
    assert fixed_batch_loss(fit.denoiser) < 0.8 * fixed_batch_loss(EDMPrecond(TINY.build_network(torch.Generator().manual_seed(0)), 0.75))
    again = train_digits_denoiser(TINY, torch.Generator().manual_seed(0))
    assert np.array_equal(fit.losses, again.losses)
    assert all(torch.equal(p, q) for p, q in zip(fit.network.parameters(), again.network.parameters()))
    x = torch.randn(5, 1, 8, 8)
    assert fit.denoiser(x, torch.full((5,), 0.5)).shape == x.shape and not fit.network.training
    # EMA after one step is decay * initial + (1 - decay) * trained (the generator draws the initial weights first).
    one = replace(TINY, steps=1, warmup_steps=0)
    initial = one.build_network(torch.Generator().manual_seed(3))
    plain = train_digits_denoiser(one, torch.Generator().manual_seed(3))
    averaged = train_digits_denoiser(replace(one, ema_decay=0.9), torch.Generator().manual_seed(3))
    for p0, p1, pe in zip(initial.parameters(), plain.network.parameters(), averaged.network.parameters()):
        torch.testing.assert_close(pe, 0.9 * p0 + 0.1 * p1)


def test_rectified_flow_objective_bf16_and_time_limit() -> None:
    fit = train_digits_denoiser(replace(TINY, objective="rectified_flow", steps=30), torch.Generator().manual_seed(0))
    assert fit.velocity_model is fit.network and np.isfinite(fit.losses).all()
    images, nfe = sample_digits(fit.denoiser, "heun", 5, 6, torch.Generator().manual_seed(1), velocity_model=fit.velocity_model)
    assert images.shape == (6, 1, 8, 8) and nfe == 5
    bf16 = train_digits_denoiser(replace(TINY, steps=8, amp_bf16=True), torch.Generator().manual_seed(0))
    assert np.isfinite(bf16.losses).all() and next(bf16.network.parameters()).dtype == torch.float32
    images, _ = sample_digits(bf16.denoiser, "euler", 3, 4, torch.Generator().manual_seed(1), amp_bf16=True)
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
    stopped = train_digits_denoiser(replace(TINY, steps=200, time_limit_s=1e-6), torch.Generator().manual_seed(0))
    assert stopped.steps_done == 25 and stopped.losses.shape == (25,)


DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from mlnotes.diffusion.digits import DigitsConfig, train_digits_denoiser

    rank, store, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    config = DigitsConfig(size=8, base_channels=8, channel_mults=(1, 2), groups=2, steps=6, batch_size=16, warmup_steps=2, ema_decay=0.5)
    fit = train_digits_denoiser(config, torch.Generator().manual_seed(0))
    torch.save({"params": [p.detach() for p in fit.network.parameters()], "losses": fit.losses, "world": fit.world_size}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()
    """
)


def test_ddp_two_processes_match_each_other_and_one_process(tmp_path: Path) -> None:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(tmp_path / "store"), str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    # Meanwhile, one process with the whole batch (the same config as the script's).
    config = DigitsConfig(size=8, base_channels=8, channel_mults=(1, 2), groups=2, steps=6, batch_size=16, warmup_steps=2, ema_decay=0.5)
    single = train_digits_denoiser(config, torch.Generator().manual_seed(0))
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["world"] == 2
    assert all(torch.equal(p, q) for p, q in zip(ranks[0]["params"], ranks[1]["params"])), "DDP keeps the ranks identical"
    np.testing.assert_array_equal(ranks[0]["losses"], ranks[1]["losses"])
    # Two ranks with half a batch each take the same steps as one process with the whole batch.
    for p, q in zip(ranks[0]["params"], single.network.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(ranks[0]["losses"], single.losses, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: train_digits_denoiser({"steps": 3}, torch.Generator()), TypeError, "DigitsConfig"),
        (lambda: train_digits_denoiser(TINY, 0), TypeError, "generator"),
        (lambda: DigitsConfig(size=12), ValueError, "size"),
        (lambda: DigitsConfig(objective="score"), ValueError, "objective"),
        (lambda: DigitsConfig(ema_decay=1.0), ValueError, "ema_decay"),
        (lambda: DigitsConfig(base_channels=12, groups=8), ValueError, "divisible by groups"),
        (lambda: DigitsConfig(size=8, channel_mults=(1, 2, 2, 2, 2)), ValueError, "divisible by 2"),
        (lambda: DigitsConfig(lr=0.0), ValueError, "lr"),
        (lambda: DigitsConfig(amp_bf16=1), TypeError, "amp_bf16"),
        (lambda: DigitsConfig(compile="yes"), TypeError, "compile"),
        (lambda: DigitsConfig(time_limit_s=0.0), ValueError, "time_limit_s"),
    ],
)
def test_training_bad_inputs(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- sampling and evaluation
def test_clamped_velocity_is_the_exact_conversion_below_the_cap() -> None:
    denoiser = EmpiricalDenoiser(digits_images(8)[:50])
    velocity = _ClampedLinearVelocity(denoiser)
    exact = velocity_model_from_denoiser(denoiser, LinearPath())
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.2, 0.5, 0.9, 0.98])
    torch.testing.assert_close(velocity(x, t), exact(x, t))
    assert torch.isfinite(velocity(x, torch.ones(4))).all() and not torch.isfinite(exact(x, torch.ones(4))).all()


def test_the_exact_denoiser_of_the_data_lands_on_real_digits(classifier: DigitsClassifier) -> None:
    """Known answer: with the training set's own denoiser every sampler ends on training digits, at the noise floor."""
    denoiser = EmpiricalDenoiser(digits_images(8, subset="train"))
    evaluation = evaluate_samplers(denoiser, [10, 35], 200, classifier, torch.Generator().manual_seed(0), floor_repeats=3)
    assert [(r.sampler, r.nfe) for r in evaluation.rows] == [(s, n) for s in SAMPLERS for n in ((10, 35) if s != "heun" else (9, 35))]
    assert evaluation.floor_n == 200 and evaluation.noise.frechet > 30 * evaluation.floor.mean
    for row in evaluation.rows:
        if row.nfe == 35:
            assert row.frechet < 1.5 * evaluation.floor.mean, row
            assert row.confidence > 0.95 and row.class_entropy > 0.95 and row.class_counts.sum() == 200
            # ... by copying: every sample sits on a training digit, far closer than a new digit does.
            assert row.nearest_train < 0.05 * evaluation.novel.nearest_train
    assert evaluation.real.nearest_train == 0.0 and np.isnan(evaluation.novel.frechet)
    assert evaluation.row("heun", 35) is evaluation.rows[5] and evaluation.row("ddim", 10) is evaluation.rows[0]
    assert evaluation.nearest_train_ratio("heun", 35) == evaluation.rows[5].nearest_train / evaluation.novel.nearest_train < 0.05
    with pytest.raises(KeyError, match=r"'heun' at nfe=10; rows: \[\('ddim', 10\)"):
        evaluation.row("heun", 10)
    assert evaluation.real.confidence > 0.95 and evaluation.noise.confidence < evaluation.real.confidence
    assert "Heun (EDM sigmas)" in evaluation.table() and len(evaluation.to_dict()["rows"]) == 8
    stored_json = json.dumps(evaluation.to_dict())  # what the benchmark writes
    stored = DigitsEvaluation.from_dict(json.loads(stored_json))
    assert json.dumps(stored.to_dict()) == stored_json and stored.table() == evaluation.table()
    assert np.isnan(stored.novel.frechet) and stored.frechet("heun") == evaluation.frechet("heun")
    broken = json.loads(stored_json)
    del broken["floor_std"], broken["rows"][0]["confidence"]
    with pytest.raises(ValueError, match="floor_std"):
        DigitsEvaluation.from_dict(broken)
    broken["floor_std"] = 1.0
    with pytest.raises(ValueError, match="confidence"):
        DigitsEvaluation.from_dict(broken)
    again = evaluate_samplers(denoiser, [10], 200, classifier, torch.Generator().manual_seed(0), floor_repeats=3, samplers=("ddim",))
    assert again.rows[0].frechet == evaluation.rows[0].frechet and again.floor.mean == evaluation.floor.mean, "same seed, same numbers"


def test_sample_digits_budgets_and_chunks() -> None:
    denoiser = EmpiricalDenoiser(digits_images(8)[:100])
    whole, nfe = sample_digits(denoiser, "ddim", 4, 10, torch.Generator().manual_seed(0))
    assert nfe == 4 and whole.shape == (10, 1, 8, 8) and whole.abs().max() <= 1.0
    chunked, _ = sample_digits(denoiser, "ddim", 4, 10, torch.Generator().manual_seed(0), batch_size=4)
    assert chunked.shape == whole.shape
    assert [sample_digits(denoiser, "heun", n, 2, torch.Generator())[1] for n in (1, 2, 3, 10)] == [1, 1, 3, 9]
    big, _ = sample_digits(EmpiricalDenoiser(digits_images(32)[:50]), "euler", 3, 2, torch.Generator(), size=32)
    assert big.shape == (2, 1, 32, 32)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: sample_digits(lambda x, s: x, "dpm", 5, 2, torch.Generator()), ValueError, "sampler"),
        (lambda c: sample_digits(lambda x, s: x, "ddim", 0, 2, torch.Generator()), ValueError, "nfe"),
        (lambda c: sample_digits(lambda x, s: x, "ddim", 1001, 2, torch.Generator()), ValueError, "1000"),
        (lambda c: sample_digits("denoiser", "ddim", 5, 2, torch.Generator()), TypeError, "denoiser"),
        (lambda c: evaluate_samplers(lambda x, s: x, [5], 10, object(), torch.Generator()), TypeError, "classifier"),
        (lambda c: evaluate_samplers(lambda x, s: x, [], 10, c, torch.Generator()), ValueError, "nfes"),
        (lambda c: evaluate_samplers(lambda x, s: x, [5], 1, c, torch.Generator()), ValueError, "n_samples"),
        (lambda c: evaluate_samplers(lambda x, s: x, [5], 10, c, torch.Generator(), samplers=("ddpm",)), ValueError, "samplers"),
    ],
)
def test_sampling_bad_inputs(classifier: DigitsClassifier, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(classifier)


def test_presets() -> None:
    small, full = DigitsConfig.small(), DigitsConfig.full()
    assert small.size == 8 and full.size == 32 and full.amp_bf16 and full.ema_decay is not None and not full.cosine_decay
    n_small = sum(p.numel() for p in small.build_network().parameters())
    n_full = sum(p.numel() for p in full.build_network().parameters())
    assert n_small < 50_000 and 2_000_000 < n_full < 8_000_000
    assert DigitsConfig.small(steps=7).steps == 7 and math.isclose(full.to_dict()["lr"], full.lr)


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("bf16", [False, True])
def test_gpu_training_and_sampling(bf16: bool) -> None:
    device = torch.device("cuda")
    config = replace(TINY, size=32, channel_mults=(1, 2, 2), steps=100, batch_size=64, amp_bf16=bf16, ema_decay=0.9)
    fit = train_digits_denoiser(config, torch.Generator(device).manual_seed(0))
    assert next(fit.network.parameters()).device.type == "cuda"
    initial = EDMPrecond(config.build_network(torch.Generator(device).manual_seed(0)).to(device), 0.75)
    assert np.isfinite(fit.losses).all()
    assert fixed_batch_loss(fit.denoiser, 32, "cuda") < 0.8 * fixed_batch_loss(initial, 32, "cuda")
    for sampler in SAMPLERS:
        images, _ = sample_digits(fit.denoiser, sampler, 5, 16, torch.Generator(device).manual_seed(1), size=32, amp_bf16=bf16)
        assert images.device.type == "cuda" and images.shape == (16, 1, 32, 32) and torch.isfinite(images).all()


@pytest.mark.gpu
def test_gpu_full_preset_steps_and_evaluation(classifier: DigitsClassifier) -> None:
    device = torch.device("cuda")
    fit = train_digits_denoiser(DigitsConfig.full(steps=5, batch_size=64, log_every=0), torch.Generator(device).manual_seed(0))
    assert fit.steps_done == 5 and np.isfinite(fit.losses).all()
    evaluation = evaluate_samplers(fit.denoiser, [3], 64, classifier, torch.Generator(device).manual_seed(1), size=32, amp_bf16=True)
    assert len(evaluation.rows) == 4 and all(np.isfinite(r.frechet) for r in evaluation.rows)
    exact = evaluate_samplers(EmpiricalDenoiser(digits_images(32, subset="train", device=device)), [35], 200, classifier,
                              torch.Generator(device).manual_seed(0), size=32, samplers=("heun",))
    assert exact.rows[0].frechet < 2.0 * exact.floor.mean < 0.05 * exact.noise.frechet  # copies of training digits: near the floor
