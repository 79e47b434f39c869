"""Tests of mlnotes.training: the shared loop learns, is reproducible, and rejects misuse."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlnotes.training import train


def _regression(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3 + 0.01 * torch.randn(n, 1, generator=g)
    return x, y


def mse(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(model(x), y)


def test_learns_a_linear_regression() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    history = train(model, mse, _regression(), epochs=60, lr=0.05, batch_size=32, generator=torch.Generator().manual_seed(0), progress=False)
    assert len(history["loss"]) == 60 and len(history["step_loss"]) == 60 * 8
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.5, -2.0, 0.5]]), atol=0.02, rtol=0)


def test_reproducible_with_generators() -> None:
    def run() -> list[float]:
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        return train(model, mse, _regression(), epochs=3, lr=1e-2, batch_size=16, generator=torch.Generator().manual_seed(5), progress=False)["step_loss"]

    assert run() == run()


def test_dataloader_optimizer_eval_fn_and_mode() -> None:
    x, y = _regression(64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    model = torch.nn.Linear(3, 1)
    model.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        assert not m.training and not torch.is_grad_enabled()
        return {"val_mse": float(F.mse_loss(m(x), y))}

    history = train(model, mse, loader, epochs=5, optimizer=optimizer, clip_grad_norm=10.0, eval_fn=evaluate, progress=False)
    assert len(history["step_loss"]) == 20 and len(history["val_mse"]) == 5
    assert history["val_mse"][-1] < history["val_mse"][0]
    assert not model.training, "the model comes back in the mode it went in"


def test_unsupervised_batch_of_one_tensor() -> None:
    """A batch may be a single tensor: loss_fn(model, x)."""
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0)) + 3.0
    model = torch.nn.Linear(1, 2)  # learns the mean through its bias
    history = train(model, lambda m, x: ((m.bias - x) ** 2).mean(), x, epochs=200, lr=0.1, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    torch.testing.assert_close(model.bias.detach(), x.mean(0), atol=0.05, rtol=0)


def test_progress_bar_and_tqdm_disable(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    model = torch.nn.Linear(3, 1)
    train(model, mse, _regression(32), epochs=2, lr=1e-2, progress=True)
    assert "train" in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "1")
    train(model, mse, _regression(32), epochs=2, lr=1e-2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "not a module"}, TypeError, "model"),
        ({"loss_fn": 3}, TypeError, "loss_fn"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lr": None}, ValueError, "lr and optimizer"),
        ({"optimizer": "sgd"}, ValueError, "lr and optimizer"),
        ({"lr": -1.0}, ValueError, "lr must"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"data": (torch.zeros(4, 3), torch.zeros(5, 1))}, ValueError, "first dimension"),
        ({"data": 5}, TypeError, "data"),
        ({"loss_fn": lambda m, x, y: (m(x) - y) ** 2}, ValueError, "scalar"),
        ({"loss_fn": lambda m, x, y: m(x).sum() * float("nan")}, FloatingPointError, "nan"),
        ({"clip_grad_norm": 0.0}, ValueError, "clip_grad_norm"),
        ({"eval_fn": lambda m: {"loss": 0.0}}, ValueError, "eval_fn"),
    ],
)
def test_bad_input(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"model": torch.nn.Linear(3, 1), "loss_fn": mse, "data": _regression(8), "epochs": 1, "lr": 0.1, "progress": False} | kwargs
    with pytest.raises(error, match=match):
        train(args.pop("model"), args.pop("loss_fn"), args.pop("data"), **args)


def test_batch_size_with_a_dataloader_is_an_error() -> None:
    loader = DataLoader(TensorDataset(*_regression(8)), batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        train(torch.nn.Linear(3, 1), mse, loader, epochs=1, lr=0.1, batch_size=4, progress=False)


@pytest.mark.gpu
def test_trains_on_cuda() -> None:
    model = torch.nn.Linear(3, 1)
    history = train(model, mse, _regression(), epochs=30, lr=0.05, batch_size=64, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert history["loss"][-1] < 0.05
