"""One small PyTorch training loop, shared by every chapter that trains a network.

The loop is deliberately plain: epochs over mini-batches, ``zero_grad``, loss,
``backward``, optional gradient clipping, ``step``. A chapter whose lesson *is*
the training procedure (a GAN, DQN, DDPG) writes its own loop in its module; the
others call :func:`train`::

    history = train(model, lambda m, x, y: F.mse_loss(m(x), y), (X, Y),
                    epochs=20, lr=1e-2, batch_size=64, generator=g)

**The loss convention.** ``loss_fn(model, *batch)`` returns a scalar tensor. A
batch is a tuple of tensors (one row per sample), so the same loop serves
supervised losses (``batch = (x, y)``), likelihoods (``batch = (x,)``) and
diffusion losses that draw their own noise.

**Progress bars.** With ``progress=None`` a tqdm bar (one tick per epoch, mean loss
in its postfix) is shown when someone is watching: in a Jupyter kernel or when
standard error is a terminal. Setting ``TQDM_DISABLE=1`` in the environment hides
it; ``make execute`` and ``make test`` do, so stored notebook outputs and test logs
carry no bars.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["train"]


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes"}:
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _as_batch(batch: Any) -> tuple[torch.Tensor, ...]:
    import torch

    if isinstance(batch, torch.Tensor):
        return (batch,)
    if isinstance(batch, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in batch):
        return tuple(batch)
    raise TypeError(f"each batch must be a tensor or a tuple of tensors, got {type(batch).__name__}")


def train(
    model: torch.nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    data: Sequence[torch.Tensor] | torch.Tensor | Iterable[Any],
    *,
    epochs: int,
    lr: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    clip_grad_norm: float | None = None,
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    progress: bool | None = None,
) -> dict[str, list[float]]:
    """Train `model` by mini-batch gradient descent on `loss_fn`.

    Parameters
    ----------
    model : torch.nn.Module
        The model; trained in place.
    loss_fn : callable
        ``loss_fn(model, *batch) -> scalar tensor``, the loss of one batch.
    data : tensor, tuple of tensors, or iterable of batches
        Either tensors sharing their first dimension (samples), which are shuffled
        and cut into batches of `batch_size` every epoch, or a re-iterable source
        of batches such as a ``torch.utils.data.DataLoader``, used as it is.
    epochs : int
        Passes over the data.
    lr : float, optional
        Learning rate of an Adam optimiser made here. Give `lr` or `optimizer`.
    optimizer : torch.optim.Optimizer, optional
        A ready optimiser over the model's parameters.
    batch_size : int, optional
        Batch size when `data` is tensors; default: the whole data set in one batch.
    device : torch.device or str, optional
        Move the model there, and every batch. Default: where the model's
        parameters are; batches are moved there.
    generator : torch.Generator, optional
        Shuffles the tensors each epoch (CPU generator). Default: PyTorch's global
        generator.
    clip_grad_norm : float, optional
        Clip the gradients' global norm to this value before each step.
    eval_fn : callable, optional
        ``eval_fn(model) -> dict[str, float]``, called after each epoch in eval
        mode without gradients; its values are appended to the history.
    progress : bool, optional
        Show a progress bar. Default: see the module docstring.

    Returns
    -------
    dict of str to list of float
        ``"loss"``: the mean training loss of each epoch; ``"step_loss"``: the
        loss of every step; plus one list per key that `eval_fn` returns.

    Raises
    ------
    TypeError
        If `model` is not a module, `loss_fn` or `eval_fn` not callable, or a
        batch not made of tensors.
    ValueError
        If both or neither of `lr` and `optimizer` are given, if `epochs`,
        `batch_size` or `clip_grad_norm` is not positive, if the tensors in
        `data` differ in length, or if `loss_fn` returns a non-scalar.
    FloatingPointError
        If the loss becomes NaN or infinite.

    Notes
    -----
    The model is put in training mode for the epochs and given back in the mode
    it came in.
    """
    import torch
    from tqdm.std import tqdm  # the plain text bar: it renders in terminals and notebooks alike

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable, got {type(eval_fn).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if lr is not None and optimizer is not None:
        raise ValueError("pass exactly one of lr and optimizer")
    if optimizer is None:
        if lr is None:
            raise ValueError("pass exactly one of lr and optimizer")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm}")

    if device is not None:
        model.to(device)
    param = next(model.parameters(), None)
    target_device = torch.device(device) if device is not None else (param.device if param is not None else torch.device("cpu"))

    tensors: tuple[torch.Tensor, ...] | None = None
    if isinstance(data, torch.Tensor) or (isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data)):
        tensors = _as_batch(data)
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(f"the tensors in data must share their first dimension, got {[tuple(t.shape) for t in tensors]}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        rows_per_batch = batch_size or n
    elif batch_size is not None:
        raise ValueError("batch_size applies only when data is tensors; a DataLoader has its own")
    elif not isinstance(data, Iterable):
        raise TypeError(f"data must be tensors or an iterable of batches, got {type(data).__name__}")

    def batches() -> Iterable[Any]:
        if tensors is None:
            yield from data  # type: ignore[union-attr]  # checked Iterable above
            return
        order = torch.randperm(tensors[0].shape[0], generator=generator)
        for start in range(0, len(order), rows_per_batch):
            index = order[start : start + rows_per_batch]
            yield tuple(t[index.to(t.device)] for t in tensors)

    history: dict[str, list[float]] = {"loss": [], "step_loss": []}
    was_training = model.training
    bar = tqdm(range(epochs), desc="train", unit="epoch", disable=not _show_progress(progress), leave=True)
    try:
        for epoch in bar:
            model.train()
            total, count = 0.0, 0
            for batch in batches():
                batch = tuple(t.to(target_device) for t in _as_batch(batch))
                loss = loss_fn(model, *batch)
                if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                    shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
                    raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss became {value} at epoch {epoch + 1}, step {count + 1}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                history["step_loss"].append(value)
                total += value
                count += 1
            if count == 0:
                raise ValueError("data produced no batches")
            history["loss"].append(total / count)
            postfix = {"loss": f"{total / count:.4g}"}
            if eval_fn is not None:
                model.eval()
                with torch.no_grad():
                    for key, metric in eval_fn(model).items():
                        if key in ("loss", "step_loss"):
                            raise ValueError(f"eval_fn must not return the key {key!r}; it names the training loss")
                        history.setdefault(key, []).append(float(metric))
                        postfix[key] = f"{float(metric):.4g}"
            bar.set_postfix(postfix)
    finally:
        bar.close()
        model.train(was_training)
    return history
