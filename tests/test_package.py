"""The package itself: importable, cheap to import, typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlnotes


def test_version_and_exports() -> None:
    assert isinstance(mlnotes.__version__, str) and mlnotes.__version__.count(".") == 2
    assert callable(mlnotes.show_source)


def test_import_is_light() -> None:
    """``import mlnotes`` must not pull in PyTorch or matplotlib (chapters without them stay fast)."""
    code = "import sys, mlnotes; print(sorted(m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ships_py_typed() -> None:
    assert (Path(mlnotes.__file__).parent / "py.typed").exists()
