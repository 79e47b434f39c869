"""Shared set-up of the Part 6 tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The networks of these tests are tiny: one thread runs them fastest, and reproducibly, on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
