"""Shared pytest set-up: tests marked ``gpu`` run only where PyTorch sees CUDA."""

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
