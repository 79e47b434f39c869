"""Part 7 · Reinforcement learning and alignment: Bellman optimality, value approximation, DDPG, DPO.

Shared pieces (replay buffer, seeded environments, evaluation) are in
:mod:`mlnotes.rl.common`; each chapter's code is in its own module.
"""
