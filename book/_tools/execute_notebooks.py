"""Execute notebooks in place, top to bottom, to refresh their stored outputs (``make execute``).

Usage: ``python book/_tools/execute_notebooks.py book/<part>/<slug>.ipynb ...``

Each notebook runs in a fresh ``python3`` kernel of the current environment, with
its own folder as the working directory. No per-cell timing metadata is recorded,
so re-running an unchanged notebook changes nothing but what its code prints.
The Makefile sets the environment that makes runs deterministic (small budget,
CPU only, fixed ``PYTHONHASHSEED``, no progress bars).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute(path: Path, *, timeout: int) -> None:
    """Run `path` and write it back with fresh outputs; raise on the first failing cell."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nbformat.write(notebook, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default 900)")
    args = parser.parse_args()
    failed = []
    for path in args.notebooks:
        start = time.perf_counter()
        try:
            execute(path, timeout=args.timeout)
        except CellExecutionError as error:
            failed.append(path)
            print(f"FAILED {path}:\n{error}", file=sys.stderr)
            continue
        print(f"executed {path} in {time.perf_counter() - start:.0f} s")
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
