"""Shared pytest set-up.

- Tests marked ``gpu`` run only where PyTorch sees CUDA.
- Tests of the PyTorch parts run with one torch thread.
"""

from __future__ import annotations

import pytest

from mlnotes.runtime import _cuda_available


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    # Importing torch takes a second or two: only probe CUDA when a gpu test was collected.
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs CUDA; torch.cuda.is_available() is False")
        for item in gpu_items:
            item.add_marker(skip)


#: Test folders whose networks are tiny: one thread runs them fastest, and reproducibly, on a busy machine.
ONE_THREAD_PARTS = frozenset({"rl", "sequence", "diffusion"})


@pytest.fixture(autouse=True)
def one_torch_thread(request: pytest.FixtureRequest):
    """Pin torch to one thread for the tests of the PyTorch parts; other tests do not import torch."""
    if ONE_THREAD_PARTS.isdisjoint(request.node.path.parent.parts):
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
