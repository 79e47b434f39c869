"""Direct preference optimisation (DPO) and the KL-regularised RLHF objective it solves.

Implements the DPO loss of Rafailov et al., "Direct Preference Optimization: Your
Language Model is Secretly a Reward Model" (NeurIPS 2023), the Bradley-Terry
preference model, and the closed-form optimum of the KL-regularised reward
maximisation that RLHF (Christiano et al. 2017; Ouyang et al. 2022) approximates
with PPO. Two testbeds:

- a *discrete* preference problem (a few prompts, a handful of responses each, a
  true reward) with a tabular softmax policy, where DPO's optimum can be compared
  with the exact optimum ``pi_ref * exp(r / beta) / Z``;
- a *tiny GRU language model* over a toy vocabulary, pretrained by maximum
  likelihood (the SFT/reference model) and fine-tuned with DPO on synthetic
  preferences, with sequence log-probabilities, KL to the reference and win rate.

The chapter is ``book/rl/dpo.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlnotes.exercises import as_float as _as_float, report as _report
from mlnotes.runtime import as_generator

__all__ = [
    "dpo_loss",
    "dpo_gradient_weights",
    "bradley_terry_probability",
    "kl_regularised_optimum",
    "implicit_reward",
    "total_variation",
    "PreferenceProblem",
    "make_preference_problem",
    "sample_preference_pairs",
    "expected_preference_pairs",
    "TabularDPOConfig",
    "TabularDPOResult",
    "train_tabular_dpo",
    "TinyGRULanguageModel",
    "make_sft_sequences",
    "sequence_log_probs",
    "sample_sequences",
    "token_count_reward",
    "SFTConfig",
    "pretrain_sft",
    "make_sequence_preferences",
    "SequencePreferences",
    "SequenceDPOConfig",
    "SequenceDPOResult",
    "train_sequence_dpo",
    "kl_to_reference",
    "win_rate",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
]


# --------------------------------------------------------------------------- the loss
def _check_logps(**tensors: torch.Tensor) -> torch.Tensor:
    first_name, first = next(iter(tensors.items()))
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (batch,), got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        if value.ndim != 1:
            raise ValueError(f"{name} must have shape (batch,), got shape {tuple(value.shape)}")
        if value.shape != first.shape:
            raise ValueError(
                f"{name} must have the shape of {first_name}, {tuple(first.shape)}, got {tuple(value.shape)}"
            )
    return first


def _check_beta(beta: float) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise TypeError(f"beta must be a positive float, got {type(beta).__name__}")
    if not (beta > 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a positive finite float, got {beta}")
    return float(beta)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The DPO loss of every preference pair, and the implicit rewards of both responses.

    .. math::
        \ell = -\log \sigma\Big(\beta \big[(\log\pi(y_w) - \log\pi_\text{ref}(y_w))
                                    - (\log\pi(y_l) - \log\pi_\text{ref}(y_l))\big]\Big)

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps : torch.Tensor, shape (batch,)
        Log-probabilities of the chosen (preferred, ``y_w``) and rejected (``y_l``)
        responses under the policy being trained (summed over a sequence's tokens).
    reference_chosen_logps, reference_rejected_logps : torch.Tensor, shape (batch,)
        The same under the frozen reference policy.
    beta : float, default 0.1
        Strength of the KL penalty to the reference; the implicit reward is
        ``beta * log(pi / pi_ref)``.

    Returns
    -------
    losses : torch.Tensor, shape (batch,)
        ``-log sigmoid(chosen_reward - rejected_reward)`` per pair (differentiable).
    chosen_rewards, rejected_rewards : torch.Tensor, shape (batch,)
        Implicit rewards ``beta * (log pi - log pi_ref)``, detached (as in the
        reference implementation: they are for monitoring).

    Raises
    ------
    TypeError
        If an input is not a floating-point tensor, or `beta` is not a number.
    ValueError
        If the inputs are not 1-D tensors of one shape, or `beta` is not positive.
    """
    _check_logps(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    beta = _check_beta(beta)
    chosen_log_ratio = policy_chosen_logps - reference_chosen_logps
    rejected_log_ratio = policy_rejected_logps - reference_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_log_ratio - rejected_log_ratio))
    return losses, beta * chosen_log_ratio.detach(), beta * rejected_log_ratio.detach()


def dpo_gradient_weights(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> torch.Tensor:
    r"""The weight ``beta * sigmoid(r_rejected - r_chosen)`` of each pair in the DPO gradient.

    The gradient of the loss is ``-weight * (grad log pi(y_w) - grad log pi(y_l))``:
    pairs that the implicit reward already ranks right get little weight.

    Parameters and errors as for :func:`dpo_loss`.

    Returns
    -------
    torch.Tensor, shape (batch,)
        ``d loss / d policy_chosen_logps`` is ``-weight``, ``d loss / d policy_rejected_logps`` is ``+weight``.
    """
    _, chosen, rejected = dpo_loss(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    return beta * torch.sigmoid(rejected - chosen)


# --------------------------------------------------------------------------- preference model and closed forms
def bradley_terry_probability(reward_a: np.ndarray | float, reward_b: np.ndarray | float) -> np.ndarray:
    r"""Bradley-Terry probability that `a` is preferred to `b`: ``sigmoid(r_a - r_b)``.

    Parameters
    ----------
    reward_a, reward_b : array_like, broadcastable shapes
        Rewards of the two responses.

    Returns
    -------
    numpy.ndarray
        ``exp(r_a) / (exp(r_a) + exp(r_b))``, computed stably.
    """
    diff = np.asarray(reward_a, dtype=np.float64) - np.asarray(reward_b, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -diff))


def _check_distribution(probs: np.ndarray, name: str) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"{name} must have shape (prompts, responses), got shape {probs.shape}")
    if np.any(~np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError(f"{name} must hold finite non-negative probabilities")
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        raise ValueError(f"each row of {name} must sum to 1, got row sums {np.round(sums, 6).tolist()}")
    return probs


def kl_regularised_optimum(ref_probs: np.ndarray, rewards: np.ndarray, beta: float) -> np.ndarray:
    r"""The maximiser of ``E_pi[r] - beta * KL(pi || pi_ref)`` for every prompt.

    .. math:: \pi^*(y \mid x) = \pi_\text{ref}(y \mid x)\, e^{r(x, y)/\beta} / Z(x)

    Parameters
    ----------
    ref_probs : array_like, shape (prompts, responses)
        Reference policy; every row sums to one.
    rewards : array_like, shape (prompts, responses)
        Reward of each response.
    beta : float
        KL coefficient, positive.

    Returns
    -------
    numpy.ndarray, shape (prompts, responses)
        The optimal policy (rows sum to one; zero where ``ref_probs`` is zero).

    Raises
    ------
    ValueError
        If shapes disagree, `ref_probs` is not a distribution per row, or `beta` is not positive.
    """
    ref_probs = _check_distribution(ref_probs, "ref_probs")
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.shape != ref_probs.shape:
        raise ValueError(f"rewards must have the shape of ref_probs, {ref_probs.shape}, got {rewards.shape}")
    beta = _check_beta(beta)
    with np.errstate(divide="ignore"):
        logits = np.log(ref_probs) + rewards / beta
    logits -= logits.max(axis=1, keepdims=True)
    unnormalised = np.exp(logits)
    return unnormalised / unnormalised.sum(axis=1, keepdims=True)


def implicit_reward(policy_probs: np.ndarray, ref_probs: np.ndarray, beta: float) -> np.ndarray:
    r"""The reward a policy implies: ``beta * log(pi / pi_ref)``, shape (prompts, responses).

    Equal to the true reward up to a per-prompt constant ``beta * log Z(x)`` when
    ``pi`` is the KL-regularised optimum.
    """
    policy_probs = _check_distribution(policy_probs, "policy_probs")
    ref_probs = _check_distribution(ref_probs, "ref_probs")
    if policy_probs.shape != ref_probs.shape:
        raise ValueError(f"policy_probs must have the shape of ref_probs, {ref_probs.shape}, got {policy_probs.shape}")
    return _check_beta(beta) * (np.log(policy_probs) - np.log(ref_probs))


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``0.5 * sum |p - q|`` along the last axis."""
    return 0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum(axis=-1)


# --------------------------------------------------------------------------- the discrete preference problem
@dataclass(frozen=True)
class PreferenceProblem:
    """A contextual bandit with preferences: prompts, responses, a reference policy and a true reward.

    Attributes
    ----------
    ref_probs : numpy.ndarray, shape (prompts, responses)
        The reference (SFT) policy ``pi_ref(y | x)``.
    rewards : numpy.ndarray, shape (prompts, responses)
        The true reward ``r(x, y)``, which preferences follow through Bradley-Terry.
    prompt_probs : numpy.ndarray, shape (prompts,)
        How often each prompt is asked.
    """

    ref_probs: np.ndarray
    rewards: np.ndarray
    prompt_probs: np.ndarray

    @property
    def n_prompts(self) -> int:
        return self.ref_probs.shape[0]

    @property
    def n_responses(self) -> int:
        return self.ref_probs.shape[1]


def make_preference_problem(
    n_prompts: int = 4, n_responses: int = 6, *, reward_scale: float = 1.0, rng: np.random.Generator | int = 0
) -> PreferenceProblem:
    """Draw a random discrete preference problem.

    The reference policy of each prompt is a Dirichlet(2) draw (every response has
    some mass), rewards are Gaussian with standard deviation `reward_scale`,
    prompts are equally likely.
    """
    for name, value in (("n_prompts", n_prompts), ("n_responses", n_responses)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_responses < 2:
        raise ValueError(f"n_responses must be at least 2 (a preference compares two), got {n_responses}")
    rng = as_generator(rng)
    ref_probs = rng.dirichlet(np.full(n_responses, 2.0), size=n_prompts)
    rewards = reward_scale * rng.normal(size=(n_prompts, n_responses))
    return PreferenceProblem(ref_probs, rewards, np.full(n_prompts, 1.0 / n_prompts))


def sample_preference_pairs(
    problem: PreferenceProblem, n_pairs: int, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample a preference data set as DPO assumes it: ``x ~ rho``, ``y1, y2 ~ pi_ref(. | x)``, label by Bradley-Terry.

    Draws of two identical responses carry no preference and are dropped, so
    somewhat fewer than `n_pairs` pairs come back.

    Returns
    -------
    prompts, chosen, rejected : numpy.ndarray of int, shape (pairs,)
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    rng = as_generator(rng)
    prompts = rng.choice(problem.n_prompts, size=n_pairs, p=problem.prompt_probs)
    cdf = np.cumsum(problem.ref_probs[prompts], axis=1)
    cdf[:, -1] = 1.0
    first = (rng.random((n_pairs, 1)) > cdf).sum(axis=1)
    second = (rng.random((n_pairs, 1)) > cdf).sum(axis=1)
    keep = first != second
    prompts, first, second = prompts[keep], first[keep], second[keep]
    p_first = bradley_terry_probability(problem.rewards[prompts, first], problem.rewards[prompts, second])
    first_wins = rng.random(prompts.shape[0]) < p_first
    chosen = np.where(first_wins, first, second)
    rejected = np.where(first_wins, second, first)
    return prompts, chosen, rejected


def expected_preference_pairs(problem: PreferenceProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered (prompt, chosen, rejected) triple with its probability under the data distribution.

    Weighting :func:`dpo_loss` by these probabilities gives the *population* DPO
    loss, the limit of infinitely many sampled pairs.

    Returns
    -------
    prompts, chosen, rejected : numpy.ndarray of int, shape (triples,)
    weights : numpy.ndarray of float, shape (triples,)
        ``2 rho(x) pi_ref(y_w|x) pi_ref(y_l|x) P(y_w > y_l | x)``; they sum to
        ``1 - P(y1 == y2)``, the draws of two equal responses being dropped.
    """
    x, i, j = np.meshgrid(
        np.arange(problem.n_prompts), np.arange(problem.n_responses), np.arange(problem.n_responses), indexing="ij"
    )
    x, i, j = x[i != j], i[i != j], j[i != j]
    p_win = bradley_terry_probability(problem.rewards[x, i], problem.rewards[x, j])
    # (y1, y2) = (i, j) or (j, i) both end as "i chosen over j": hence the factor 2.
    weights = 2.0 * problem.prompt_probs[x] * problem.ref_probs[x, i] * problem.ref_probs[x, j] * p_win
    return x, i, j, weights


@dataclass
class TabularDPOConfig:
    """Hyperparameters of :func:`train_tabular_dpo`.

    Attributes
    ----------
    beta : float
        KL coefficient of the DPO loss.
    max_iter : int
        Iterations of L-BFGS (full batch: the loss is a smooth convex function of the logits' differences).
    tolerance : float
        L-BFGS stops when the gradient's largest entry falls below this.
    """

    beta: float = 0.5
    max_iter: int = 500
    tolerance: float = 1e-10


@dataclass
class TabularDPOResult:
    """What :func:`train_tabular_dpo` returns.

    Attributes
    ----------
    policy_probs : numpy.ndarray, shape (prompts, responses)
        The trained softmax policy.
    loss_history : list of float
        The (weighted mean) DPO loss at each L-BFGS function evaluation.
    """

    policy_probs: np.ndarray
    loss_history: list[float] = field(default_factory=list)


def train_tabular_dpo(
    problem: PreferenceProblem,
    prompts: np.ndarray,
    chosen: np.ndarray,
    rejected: np.ndarray,
    weights: np.ndarray | None = None,
    config: TabularDPOConfig | None = None,
) -> TabularDPOResult:
    """Fit a tabular softmax policy ``pi(y|x) = softmax(logits[x])_y`` with the DPO loss.

    Starts at the reference policy and minimises the weighted mean of
    :func:`dpo_loss` over the pairs with full-batch L-BFGS in float64.

    Parameters
    ----------
    problem : PreferenceProblem
        Supplies the reference policy.
    prompts, chosen, rejected : array_like of int, shape (pairs,)
        The preference data (from :func:`sample_preference_pairs` or :func:`expected_preference_pairs`).
    weights : array_like, shape (pairs,), optional
        A weight per pair (uniform when omitted).
    config : TabularDPOConfig, optional

    Returns
    -------
    TabularDPOResult
    """
    config = config or TabularDPOConfig()
    beta = _check_beta(config.beta)
    prompts, chosen, rejected = (np.asarray(a, dtype=np.int64) for a in (prompts, chosen, rejected))
    if not (prompts.shape == chosen.shape == rejected.shape) or prompts.ndim != 1 or prompts.size == 0:
        raise ValueError(
            "prompts, chosen and rejected must be non-empty 1-D arrays of one shape, got shapes "
            f"{prompts.shape}, {chosen.shape}, {rejected.shape}"
        )
    for name, index, size in (
        ("prompts", prompts, problem.n_prompts),
        ("chosen", chosen, problem.n_responses),
        ("rejected", rejected, problem.n_responses),
    ):
        if index.min() < 0 or index.max() >= size:
            raise ValueError(f"{name} must hold indices in [0, {size}), got values in [{index.min()}, {index.max()}]")
    w = np.ones(prompts.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != prompts.shape or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with shape {prompts.shape} and a positive sum")
    w = torch.as_tensor(w / w.sum())
    ref_log = torch.as_tensor(np.log(problem.ref_probs))
    x, yw, yl = (torch.as_tensor(a) for a in (prompts, chosen, rejected))
    logits = ref_log.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS(
        [logits], max_iter=config.max_iter, tolerance_grad=config.tolerance, tolerance_change=1e-14,
        history_size=50, line_search_fn="strong_wolfe",
    )
    history: list[float] = []

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        log_policy = torch.log_softmax(logits, dim=1)
        losses, _, _ = dpo_loss(log_policy[x, yw], log_policy[x, yl], ref_log[x, yw], ref_log[x, yl], beta)
        loss = (w * losses).sum()
        loss.backward()
        history.append(float(loss.detach()))
        return loss

    optimiser.step(closure)
    probs = torch.softmax(logits.detach(), dim=1).numpy()
    return TabularDPOResult(probs, history)


# --------------------------------------------------------------------------- a tiny language model
class TinyGRULanguageModel(nn.Module):
    """A one-layer GRU language model over ``n_tokens`` content tokens plus end-of-sequence.

    Token ids: content ``0 .. n_tokens-1``, ``eos = n_tokens``, ``bos = n_tokens + 1``
    (input only), ``pad = n_tokens + 2`` (after the end, never scored). A sequence
    has at most ``max_len`` content tokens: at position ``max_len`` only EOS is
    allowed, so the model's sequence distribution is exactly what
    :func:`sample_sequences` draws from.

    Parameters
    ----------
    n_tokens : int
        Content vocabulary size.
    max_len : int
        Longest sequence (content tokens, EOS not counted).
    embed_dim, hidden_dim : int
        Embedding and GRU state sizes.
    """

    def __init__(self, n_tokens: int = 6, max_len: int = 8, embed_dim: int = 32, hidden_dim: int = 64) -> None:
        super().__init__()
        for name, value in (("n_tokens", n_tokens), ("max_len", max_len), ("embed_dim", embed_dim), ("hidden_dim", hidden_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.n_tokens, self.max_len = n_tokens, max_len
        self.eos, self.bos, self.pad = n_tokens, n_tokens + 1, n_tokens + 2
        self.embed = nn.Embedding(n_tokens + 3, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, n_tokens + 1)

    def forward(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token log-probabilities.

        Parameters
        ----------
        inputs : torch.Tensor of int64, shape (batch, steps)
            Input tokens (BOS first).
        hidden : torch.Tensor, shape (1, batch, hidden_dim), optional
            GRU state to continue from.
        start : int
            Position of ``inputs[:, 0]`` in the sequence (for the length limit).

        Returns
        -------
        log_probs : torch.Tensor, shape (batch, steps, n_tokens + 1)
        hidden : torch.Tensor, shape (1, batch, hidden_dim)
        """
        self.gru.flatten_parameters()  # cuDNN wants one weight block; a deepcopy or .to() breaks it up
        output, hidden = self.gru(self.embed(inputs), hidden)
        logits = self.head(output)
        position = torch.arange(start, start + inputs.shape[1], device=inputs.device)
        only_eos = (position >= self.max_len)[None, :, None] & (
            torch.arange(self.n_tokens + 1, device=inputs.device) != self.eos
        )
        logits = logits.masked_fill(only_eos, float("-inf"))
        return torch.log_softmax(logits.float(), dim=-1).to(logits.dtype), hidden


def _torch_generator(seed: int | torch.Generator, device: torch.device) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"generator must be a torch.Generator or an int seed, got {type(seed).__name__}")
    return torch.Generator(device=device).manual_seed(int(seed))


def make_sft_sequences(
    n_sequences: int, *, n_tokens: int = 6, max_len: int = 8, min_len: int = 3, rng: np.random.Generator | int = 0
) -> np.ndarray:
    """Synthetic SFT data: uniform lengths in ``[min_len, max_len]``, uniform tokens, EOS, then padding.

    Returns
    -------
    numpy.ndarray of int64, shape (n_sequences, max_len + 1)
        Token ids in the convention of :class:`TinyGRULanguageModel`.
    """
    if not 1 <= min_len <= max_len:
        raise ValueError(f"min_len must be in [1, max_len={max_len}], got {min_len}")
    rng = as_generator(rng)
    lengths = rng.integers(min_len, max_len + 1, size=n_sequences)
    tokens = rng.integers(0, n_tokens, size=(n_sequences, max_len + 1))
    position = np.arange(max_len + 1)[None, :]
    tokens = np.where(position == lengths[:, None], n_tokens, tokens)
    return np.where(position > lengths[:, None], n_tokens + 2, tokens).astype(np.int64)


def _check_tokens(model: TinyGRULanguageModel, tokens: torch.Tensor) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64 or tokens.ndim != 2:
        got = f"{type(tokens).__name__} {getattr(tokens, 'dtype', '')} {tuple(getattr(tokens, 'shape', ()))}"
        raise ValueError(f"tokens must be an int64 tensor of shape (batch, seq_len), got {got}")
    if tokens.shape[1] > model.max_len + 1:
        raise ValueError(f"tokens may have at most max_len + 1 = {model.max_len + 1} columns, got {tokens.shape[1]}")


def sequence_log_probs(model: TinyGRULanguageModel, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of whole sequences: the sum of token log-probs up to and including EOS.

    Parameters
    ----------
    model : TinyGRULanguageModel
    tokens : torch.Tensor of int64, shape (batch, seq_len)
        Sequences ending in EOS and padded with ``model.pad``, on the model's device.

    Returns
    -------
    torch.Tensor, shape (batch,)
        ``sum_t log p(tokens[t] | tokens[:t])`` over non-padding positions.
    """
    _check_tokens(model, tokens)
    mask = tokens != model.pad
    bos = torch.full_like(tokens[:, :1], model.bos)
    inputs = torch.cat([bos, tokens[:, :-1].masked_fill(~mask[:, :-1], model.eos)], dim=1)
    log_probs, _ = model(inputs)
    picked = log_probs.gather(-1, tokens.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, picked.float(), 0.0).sum(dim=1)


@torch.no_grad()
def sample_sequences(
    model: TinyGRULanguageModel, n_sequences: int, generator: int | torch.Generator = 0
) -> torch.Tensor:
    """Draw sequences from the model, token by token, until EOS.

    Parameters
    ----------
    model : TinyGRULanguageModel
    n_sequences : int
    generator : torch.Generator or int
        A generator on the model's device, or a seed for a new one.

    Returns
    -------
    torch.Tensor of int64, shape (n_sequences, max_len + 1)
        On the model's device, EOS-terminated and padded with ``model.pad``.
    """
    device = next(model.parameters()).device
    generator = _torch_generator(generator, device)
    token = torch.full((n_sequences, 1), model.bos, dtype=torch.int64, device=device)
    done = torch.zeros(n_sequences, dtype=torch.bool, device=device)
    hidden = None
    columns = []
    for position in range(model.max_len + 1):
        log_probs, hidden = model(token, hidden, start=position)
        token = torch.multinomial(log_probs[:, -1].float().exp(), 1, generator=generator)
        column = token[:, 0].masked_fill(done, model.pad)
        columns.append(column)
        done = done | (column == model.eos)
    return torch.stack(columns, dim=1)


def token_count_reward(tokens: torch.Tensor, *, good: int = 0, bad: int = 1) -> torch.Tensor:
    """The synthetic true reward: occurrences of token `good` minus occurrences of token `bad`.

    Parameters
    ----------
    tokens : torch.Tensor of int64, shape (batch, seq_len)

    Returns
    -------
    torch.Tensor of float32, shape (batch,)
    """
    return ((tokens == good).sum(dim=1) - (tokens == bad).sum(dim=1)).float()


@dataclass
class SFTConfig:
    """Hyperparameters of :func:`pretrain_sft` (maximum likelihood on the SFT sequences).

    Attributes
    ----------
    steps : int
        Adam steps.
    batch_size : int
        Sequences per step.
    lr : float
        Adam learning rate.
    """

    steps: int = 300
    batch_size: int = 128
    lr: float = 3e-3


def pretrain_sft(
    model: TinyGRULanguageModel, sequences: torch.Tensor, config: SFTConfig | None = None, generator: int | torch.Generator = 0
) -> list[float]:
    """Train `model` by maximum likelihood (mean negative log-likelihood per token) on `sequences`.

    Returns
    -------
    list of float
        The training loss (nats per token) at every step.
    """
    config = config or SFTConfig()
    _check_tokens(model, sequences)
    generator = _torch_generator(generator, sequences.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    n_scored = (sequences != model.pad).sum(dim=1).float()
    history = []
    for _ in range(config.steps):
        index = torch.randint(0, sequences.shape[0], (config.batch_size,), device=sequences.device, generator=generator)
        loss = -(sequence_log_probs(model, sequences[index]).sum() / n_scored[index].sum())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(float(loss.detach()))
    return history


@dataclass(frozen=True)
class SequencePreferences:
    """A synthetic preference data set of sequence pairs.

    Attributes
    ----------
    chosen, rejected : torch.Tensor of int64, shape (pairs, max_len + 1)
    reference_chosen_logps, reference_rejected_logps : torch.Tensor, shape (pairs,)
        Their log-probabilities under the reference, computed once.
    """

    chosen: torch.Tensor
    rejected: torch.Tensor
    reference_chosen_logps: torch.Tensor
    reference_rejected_logps: torch.Tensor


@torch.no_grad()
def make_sequence_preferences(
    reference: TinyGRULanguageModel,
    reward_fn: Callable[[torch.Tensor], torch.Tensor],
    n_pairs: int,
    generator: int | torch.Generator = 0,
) -> SequencePreferences:
    """Sample two sequences from the reference per pair and label them by Bradley-Terry on `reward_fn`.

    Pairs of equal reward are dropped (they carry no information about which is better).
    """
    device = next(reference.parameters()).device
    generator = _torch_generator(generator, device)
    first = sample_sequences(reference, n_pairs, generator)
    second = sample_sequences(reference, n_pairs, generator)
    r1, r2 = reward_fn(first), reward_fn(second)
    keep = r1 != r2
    first, second, r1, r2 = first[keep], second[keep], r1[keep], r2[keep]
    first_wins = torch.rand(first.shape[0], device=device, generator=generator) < torch.sigmoid(r1 - r2)
    chosen = torch.where(first_wins[:, None], first, second)
    rejected = torch.where(first_wins[:, None], second, first)
    return SequencePreferences(
        chosen, rejected, sequence_log_probs(reference, chosen), sequence_log_probs(reference, rejected)
    )


@dataclass
class SequenceDPOConfig:
    """Hyperparameters of :func:`train_sequence_dpo`.

    Attributes
    ----------
    beta : float
        KL coefficient of the DPO loss (DPO paper: 0.1 to 0.5).
    steps : int
        Adam steps.
    batch_size : int
        Preference pairs per step.
    lr : float
        Adam learning rate.
    eval_every : int
        Steps between estimates of the KL and win rate (0: never).
    eval_samples : int
        Sequences sampled per estimate.
    """

    beta: float = 0.1
    steps: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    eval_every: int = 50
    eval_samples: int = 512


@dataclass
class SequenceDPOResult:
    """What :func:`train_sequence_dpo` returns: per-step and per-evaluation curves.

    Attributes
    ----------
    policy : TinyGRULanguageModel
        The fine-tuned model (trained in place).
    loss, reward_margin, reward_accuracy : list of float
        Per step: mean DPO loss, mean ``chosen_reward - rejected_reward``, and the
        fraction of pairs whose implicit reward ranks the chosen response higher.
    eval_steps, kl, win_rate, true_reward : list
        At every evaluation: the step, the Monte Carlo KL to the reference, the win
        rate against the reference under the true reward, and the mean true reward.
    """

    policy: TinyGRULanguageModel
    loss: list[float] = field(default_factory=list)
    reward_margin: list[float] = field(default_factory=list)
    reward_accuracy: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    win_rate: list[float] = field(default_factory=list)
    true_reward: list[float] = field(default_factory=list)


def train_sequence_dpo(
    policy: TinyGRULanguageModel,
    reference: TinyGRULanguageModel,
    data: SequencePreferences,
    reward_fn: Callable[[torch.Tensor], torch.Tensor],
    config: SequenceDPOConfig | None = None,
    generator: int | torch.Generator = 0,
) -> SequenceDPOResult:
    """Fine-tune `policy` (usually a copy of `reference`) with the DPO loss on `data`.

    `reward_fn` is used only to *evaluate* (win rate, mean reward), never to train.
    """
    config = config or SequenceDPOConfig()
    beta = _check_beta(config.beta)
    device = data.chosen.device
    generator = _torch_generator(generator, device)
    optimiser = torch.optim.Adam(policy.parameters(), lr=config.lr)
    result = SequenceDPOResult(policy)

    def evaluate(step: int) -> None:
        kl = kl_to_reference(policy, reference, config.eval_samples, generator)
        wins, reward = win_rate(policy, reference, reward_fn, config.eval_samples, generator, return_reward=True)
        result.eval_steps.append(step)
        result.kl.append(kl)
        result.win_rate.append(wins)
        result.true_reward.append(reward)

    for step in range(config.steps):
        if config.eval_every and step % config.eval_every == 0:
            evaluate(step)
        index = torch.randint(0, data.chosen.shape[0], (config.batch_size,), device=device, generator=generator)
        losses, chosen_rewards, rejected_rewards = dpo_loss(
            sequence_log_probs(policy, data.chosen[index]),
            sequence_log_probs(policy, data.rejected[index]),
            data.reference_chosen_logps[index],
            data.reference_rejected_logps[index],
            beta,
        )
        loss = losses.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        result.loss.append(float(loss.detach()))
        result.reward_margin.append(float((chosen_rewards - rejected_rewards).mean()))
        result.reward_accuracy.append(float((chosen_rewards > rejected_rewards).float().mean()))
    if config.eval_every:
        evaluate(config.steps)
    return result


@torch.no_grad()
def kl_to_reference(
    policy: TinyGRULanguageModel, reference: TinyGRULanguageModel, n_samples: int = 1024, generator: int | torch.Generator = 0
) -> float:
    """Monte Carlo estimate of ``KL(pi || pi_ref) = E_{y ~ pi}[log pi(y) - log pi_ref(y)]`` (nats per sequence)."""
    samples = sample_sequences(policy, n_samples, generator)
    return float((sequence_log_probs(policy, samples) - sequence_log_probs(reference, samples)).mean())


@torch.no_grad()
def win_rate(
    policy: TinyGRULanguageModel,
    reference: TinyGRULanguageModel,
    reward_fn: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int = 1024,
    generator: int | torch.Generator = 0,
    *,
    return_reward: bool = False,
) -> float | tuple[float, float]:
    """How often a policy sample beats an independent reference sample under the true reward (ties count half).

    Returns the win rate, and with ``return_reward=True`` also the policy's mean true reward.
    """
    device = next(policy.parameters()).device
    generator = _torch_generator(generator, device)
    ours = reward_fn(sample_sequences(policy, n_samples, generator))
    theirs = reward_fn(sample_sequences(reference, n_samples, generator))
    rate = float(((ours > theirs).float() + 0.5 * (ours == theirs).float()).mean())
    return (rate, float(ours.mean())) if return_reward else rate


# --------------------------------------------------------------------------- exercises


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the DPO loss of one pair.

    The policy gives the chosen response log-probability -1 and the rejected one
    -2; the reference gives both -1.5; ``beta = 1``. What is the loss?
    """
    losses, _, _ = dpo_loss(*(torch.tensor([v], dtype=torch.float64) for v in (-1.0, -2.0, -1.5, -1.5)), beta=1.0)
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, float(losses[0]), rel_tol=1e-3),
        "Correct: the margin is (0.5) - (-0.5) = 1, and -log sigmoid(1) = log(1 + e^-1).",
        "Not yet: compute each log-ratio log pi - log pi_ref, take beta times their difference, then -log sigmoid.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: the KL-regularised optimum of a two-response prompt.

    ``pi_ref = (0.5, 0.5)``, rewards ``(1, 0)``, ``beta = 0.5``: what is ``pi*(y_1)``?
    """
    expected = kl_regularised_optimum(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), 0.5)[0, 0]
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        "Correct: e^2 / (e^2 + 1), about 0.881.",
        "Not yet: multiply each reference probability by exp(reward / beta), then normalise.",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: the gradient weight of a pair the implicit reward ranks wrongly.

    Implicit rewards: chosen -0.2, rejected 0.3, ``beta = 0.1``. What is the weight
    ``beta * sigmoid(r_rejected - r_chosen)`` of this pair in the DPO gradient?
    """
    expected = 0.1 / (1.0 + math.exp(-0.5))
    value = _as_float(answer)
    return _report(
        value is not None and math.isclose(value, expected, rel_tol=1e-3),
        "Correct: 0.1 * sigmoid(0.5), about 0.0622: more than the 0.05 of an undecided pair.",
        "Not yet: the weight is beta times sigmoid of (rejected reward minus chosen reward).",
    )
