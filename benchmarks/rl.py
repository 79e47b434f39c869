"""Part 7 benchmark: DQN on CartPole-v1 and DDPG on Pendulum-v1, several seeds.

For every agent and seed ``0 .. seeds-1`` this trains with the chapter's entry
point, evaluates the final greedy policy on seeded episodes, prints a table (per
seed the evaluation mean, then the mean over seeds, whether the goal is met and
the wall time) and writes ``book/rl/_data/<agent>_benchmark.json``, which the
chapters plot:

* ``dqn``: :func:`mlnotes.rl.value_approximation.train_dqn` on ``CartPole-v1``,
  100k steps, 20 evaluation episodes; goal: mean over seeds >= 475.
* ``ddpg``: :func:`mlnotes.rl.ddpg.train` on ``Pendulum-v1``, 20k steps, 10
  evaluation episodes; goal: mean over seeds > -200 (published DDPG: about -150).

Run: ``python benchmarks/rl.py [--only dqn,ddpg] [--seeds 3] [--jobs 3]
[--steps-scale 1.0]``. Seeds run in parallel processes (one PyTorch thread
each). ``--steps-scale`` below 1 gives a quick trial run; its JSON records the
scale, and the goal is only meaningful at 1.0. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "book" / "rl" / "_data"


@dataclass(frozen=True)
class Task:
    """One agent's benchmark: where its entry point lives and what it must reach."""

    agent: str
    module: str
    function: str
    env_id: str
    total_steps: int
    n_eval_episodes: int
    goal: float
    goal_text: str
    strict: bool  # goal must be exceeded (>) rather than reached (>=)

    def met(self, value: float) -> bool:
        return value > self.goal if self.strict else value >= self.goal


TASKS = {
    "dqn": Task("dqn", "mlnotes.rl.value_approximation", "train_dqn", "CartPole-v1", 100_000, 20, 475.0,
                "mean eval return >= 475", strict=False),
    "ddpg": Task("ddpg", "mlnotes.rl.ddpg", "train", "Pendulum-v1", 20_000, 10, -200.0,
                 "mean eval return > -200", strict=True),
}


def run_one(task: Task, seed: int, total_steps: int) -> dict:
    """Train one seed in this process (one PyTorch thread, CPU unless MLNOTES_DEVICE says otherwise)."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("TQDM_DISABLE", "1")
    train = getattr(importlib.import_module(task.module), task.function)  # lazy: ddpg may not exist yet
    start = time.perf_counter()
    result = train(env_id=task.env_id, total_steps=total_steps, seed=seed,
                   n_eval_episodes=task.n_eval_episodes, progress=False)
    wall = time.perf_counter() - start
    config = result.config
    try:
        config = asdict(config)
    except TypeError:
        config = repr(config)
    return {
        "seed": seed,
        "eval_returns": [float(x) for x in result.eval_returns],
        "eval_mean": float(np.mean(result.eval_returns)),
        "episode_end_steps": [int(x) for x in result.episode_end_steps],
        "episode_returns": [float(x) for x in result.episode_returns],
        "wall_s": round(wall, 1),
        "device": str(next(iter(_networks(result.agent)), "cpu")),
        "config": config,
    }


def _networks(agent) -> list[str]:
    """The device of the agent's first parameter, when it has torch modules."""
    import torch

    for value in vars(agent).values():
        if isinstance(value, torch.nn.Module):
            return [str(next(value.parameters()).device)]
    return []


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (f"{platform.system()} {cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
            f"torch {torch.__version__}; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d}")


def benchmark(task: Task, seeds: int, jobs: int, steps_scale: float) -> bool:
    total_steps = max(1, int(round(task.total_steps * steps_scale)))
    print(f"\n{task.agent}: {task.env_id}, {total_steps} steps, {task.n_eval_episodes} eval episodes, "
          f"{seeds} seed(s), goal {task.goal_text}")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, seeds))) as pool:
        runs = list(pool.map(run_one, [task] * seeds, range(seeds), [total_steps] * seeds))
    wall = time.perf_counter() - start
    means = [run["eval_mean"] for run in runs]
    mean = float(np.mean(means))
    ok = task.met(mean)
    print(f"{'seed':>6} {'eval mean':>10} {'eval std':>9} {'episodes':>9} {'wall s':>8}")
    for run in runs:
        print(f"{run['seed']:>6} {run['eval_mean']:>10.1f} {np.std(run['eval_returns']):>9.1f} "
              f"{len(run['episode_returns']):>9} {run['wall_s']:>8.0f}")
    print(f"{'mean':>6} {mean:>10.1f}   goal {task.goal_text}: {'ok' if ok else 'MISSED'}   "
          f"(wall {wall:.0f} s for all seeds)")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = {
        "agent": task.agent,
        "env_id": task.env_id,
        "total_steps": total_steps,
        "steps_scale": steps_scale,
        "n_eval_episodes": task.n_eval_episodes,
        "goal": task.goal,
        "goal_text": task.goal_text,
        "mean_eval_return": mean,
        "goal_met": ok,
        "hardware": hardware() + f"; device {runs[0]['device']}; {jobs} parallel job(s)",
        "wall_s": round(wall, 1),
        "runs": runs,
    }
    path = DATA_DIR / f"{task.agent}_benchmark.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(DATA_DIR.parent.parent.parent)}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="dqn,ddpg", help="comma-separated agents (dqn, ddpg)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. n-1 (default 3)")
    parser.add_argument("--jobs", type=int, default=3, help="parallel processes (default 3)")
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="multiply every agent's step budget (default 1.0; the goals assume 1.0)")
    args = parser.parse_args()
    agents = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = [a for a in agents if a not in TASKS]
    if unknown:
        parser.error(f"--only: unknown agent(s) {unknown}; choose from {sorted(TASKS)}")
    if args.seeds < 1 or args.jobs < 1 or args.steps_scale <= 0:
        parser.error("--seeds and --jobs must be >= 1 and --steps-scale > 0")
    results = {agent: benchmark(TASKS[agent], args.seeds, args.jobs, args.steps_scale) for agent in agents}
    missed = [agent for agent, ok in results.items() if not ok]
    if missed:
        print(f"\ngoal MISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
