"""mlnotes: the code that the mlnotes book teaches, tested.

Each chapter ``book/<part>/<slug>.ipynb`` is backed by a module
``mlnotes/<part>/<slug>.py`` and tests ``tests/<part>/test_<slug>.py``. Shared
machinery lives at the top of the package:

- :mod:`mlnotes.runtime`: device choice, seeding, the small/full budget switch;
- :mod:`mlnotes.datasets`: offline data sets and toy distributions;
- :mod:`mlnotes.plotting`: one figure style and reusable plots;
- :mod:`mlnotes.training`: one small PyTorch training loop;
- :mod:`mlnotes.metrics`: distances between sample sets;
- :mod:`mlnotes.display`: :func:`~mlnotes.display.show_source`, how chapters show their code.

``import mlnotes`` is cheap: it imports neither PyTorch nor matplotlib.
"""

from __future__ import annotations

from mlnotes.display import show_source

__version__ = "0.1.0"

__all__ = ["__version__", "show_source"]
