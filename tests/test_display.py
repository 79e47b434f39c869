"""Tests of mlnotes.display: the source shown is the source, from the right file, shown the right way."""

from __future__ import annotations

import inspect

import pytest

from mlnotes import display, show_source
from mlnotes.datasets import GaussianMixture, noisy_sine
from mlnotes.display import get_source


def test_function_source_with_origin() -> None:
    text = get_source(noisy_sine)
    assert text.startswith("# mlnotes/datasets.py\ndef noisy_sine(")
    assert inspect.getsource(noisy_sine).rstrip() in text


def test_members_and_docstrings() -> None:
    text = get_source(GaussianMixture, members=["score", "noised"])
    assert "class GaussianMixture:" in text and "A Gaussian mixture" in text
    assert "def score(" in text and "def noised(" in text and "def log_prob(" not in text
    assert text.index("def score(") < text.index("def noised(")
    bare = get_source(GaussianMixture.score, docstrings=False)
    assert "Exact score" not in bare and "softmax(log_terms" in bare
    compile(get_source(GaussianMixture, docstrings=False).split("\n", 1)[1], "<shown>", "exec")


def test_non_mlnotes_objects_name_their_module() -> None:
    text = get_source(inspect.cleandoc)
    assert text.startswith("# inspect\n") and "/" not in text.splitlines()[0]


def test_show_source_prints_outside_ipython(capsys: pytest.CaptureFixture[str]) -> None:
    assert show_source(noisy_sine) is None
    assert capsys.readouterr().out == get_source(noisy_sine)


def test_show_source_displays_markdown_in_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("IPython")
    shown = []
    monkeypatch.setattr(display, "_in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", shown.append)
    show_source(noisy_sine, docstrings=False)
    (markdown,) = shown
    assert markdown.data.startswith("```python\n# mlnotes/datasets.py\n") and markdown.data.endswith("```")


@pytest.mark.parametrize(
    ("obj", "kwargs", "error", "match"),
    [
        (len, {}, TypeError, "obj must"),
        (3, {}, TypeError, "obj must"),
        (noisy_sine, {"members": ["x"]}, TypeError, "classes only"),
        (GaussianMixture, {"members": []}, ValueError, "members"),
        (GaussianMixture, {"members": "score"}, ValueError, "members"),
        (GaussianMixture, {"members": ["fit"]}, ValueError, "fit"),
    ],
)
def test_bad_input(obj: object, kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        get_source(obj, **kwargs)
