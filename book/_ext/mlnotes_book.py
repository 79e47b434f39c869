"""Sphinx extension for the mlnotes book (listed under ``sphinx.local_extensions`` in ``_config.yml``).

It does two things:

1. **MathJax, local or CDN.** ``make book`` installs MathJax 3 from the npm registry
   into ``_vendor/mathjax`` (an ignored folder); ``_config.yml`` points
   ``mathjax_path`` at it and lists ``_vendor`` in ``html_extra_path``, which copies
   it to the site root. Where npm is missing that folder is absent, and this
   extension falls back to the CDN (math then needs a network connection to render)
   instead of failing the ``-W`` build.
2. **No scikit-learn plumbing in the API reference.** scikit-learn adds
   ``set_fit_request``-style metadata-routing methods to every estimator class;
   their docstrings point into scikit-learn's own documentation, which an offline
   build cannot resolve, and they teach nothing. autodoc skips them.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

CDN_MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-mml-chtml.js"
VENDOR_DIR = "_vendor"
SKLEARN_ROUTING = re.compile(r"set_\w+_request")


def _fall_back_to_cdn(app: Sphinx, config: Config) -> None:
    # mathjax_path is relative to _static/; html_extra_path puts _vendor/* at the site root.
    served = posixpath.normpath(posixpath.join("_static", config.mathjax_path))
    local = Path(app.confdir, VENDOR_DIR, served)
    if "://" not in config.mathjax_path and local.is_file():
        return
    logger.info("local MathJax not found (%s): loading MathJax from the CDN", local)
    config.mathjax_path = CDN_MATHJAX
    config.html_extra_path = [path for path in config.html_extra_path if Path(path).name != VENDOR_DIR]


def _skip_sklearn_routing(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    if what == "class" and SKLEARN_ROUTING.fullmatch(name):
        return True
    return None  # let autodoc decide


def setup(app: Sphinx) -> dict[str, object]:
    # Before Sphinx validates html_extra_path (priority 800).
    app.connect("config-inited", _fall_back_to_cdn, priority=100)
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
