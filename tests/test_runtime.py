"""Tests of mlnotes.runtime: device choice, seeding, the budget switch."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mlnotes import runtime
from mlnotes.runtime import as_generator, budget, get_device, pick, seed_everything


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_cuda_available", lambda: False)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.BUDGET_ENV, raising=False)
    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)


# --------------------------------------------------------------------------- get_device


def test_get_device_defaults_to_cpu_without_cuda(no_cuda: None, clean_env: None) -> None:
    assert get_device() == torch.device("cpu")
    assert get_device("auto") == torch.device("cpu")


def test_get_device_explicit_and_env(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert get_device() == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "", "tpu"])
def test_get_device_rejects_unknown(bad: str, clean_env: None) -> None:
    with pytest.raises(ValueError, match="prefer"):
        get_device(bad)


def test_get_device_names_env_var_in_error(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.DEVICE_ENV, "gpu")
    with pytest.raises(ValueError, match=runtime.DEVICE_ENV):
        get_device()


def test_get_device_unavailable_cuda(no_cuda: None) -> None:
    with pytest.raises(RuntimeError, match="no CUDA device"):
        get_device("cuda")


def test_get_device_type_error() -> None:
    with pytest.raises(TypeError, match="prefer"):
        get_device(0)  # type: ignore[arg-type]


@pytest.mark.gpu
def test_get_device_cuda(clean_env: None) -> None:
    assert get_device().type == "cuda"
    assert get_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match="CUDA device"):
        get_device(f"cuda:{torch.cuda.device_count()}")


# --------------------------------------------------------------------------- seeding


def test_seed_everything_reproduces_every_generator() -> None:
    def draw() -> tuple[float, float, float, float]:
        rng = seed_everything(123)
        return random.random(), float(np.random.rand()), float(torch.rand(())), float(rng.random())

    assert draw() == draw()
    first = draw()
    seed_everything(124)
    assert (random.random(), float(np.random.rand())) != first[:2]


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError), ("1", TypeError)])
def test_seed_everything_bad_seed(seed: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="seed"):
        seed_everything(seed)  # type: ignore[arg-type]


def test_as_generator() -> None:
    rng = np.random.default_rng(0)
    assert as_generator(rng) is rng
    assert as_generator(5).random() == np.random.default_rng(5).random()
    with pytest.raises(TypeError, match="rng"):
        as_generator(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="random_state"):
        as_generator(1.0, name="random_state")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rng"):
        as_generator(-3)


# --------------------------------------------------------------------------- budget


def test_budget_default_follows_cuda(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_cuda_available", lambda: False)
    assert budget() == "small"
    monkeypatch.setattr(runtime, "_cuda_available", lambda: True)
    assert budget() == "full"


@pytest.mark.parametrize(("value", "expected"), [("small", "small"), ("full", "full"), (" FULL ", "full"), ("", "small")])
def test_budget_from_env(value: str, expected: str, no_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.BUDGET_ENV, value)
    assert budget() == expected


def test_budget_rejects_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.BUDGET_ENV, "medium")
    with pytest.raises(ValueError, match=runtime.BUDGET_ENV):
        budget()


def test_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.BUDGET_ENV, "small")
    assert pick(small=50, full=500) == 50
    monkeypatch.setenv(runtime.BUDGET_ENV, "full")
    assert pick(small=50, full=500) == 500
    with pytest.raises(TypeError):
        pick(50, 500)  # type: ignore[misc]  # keyword-only by design
