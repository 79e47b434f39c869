"""How a chapter shows the code it teaches: :func:`show_source`.

The code a reader reads in a chapter is the code the tests test, so chapters do
not paste code into cells; they show it from the module::

    from mlnotes import show_source
    show_source(DecisionTreeClassifier, members=["fit", "_grow"])

In a notebook the source appears as a highlighted Markdown code block (which
Jupyter and the built book both render), headed by the file it lives in; outside
IPython it is printed as plain text. :func:`get_source` returns the same text.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["get_source", "show_source"]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _origin(obj: Any) -> str:
    """Where `obj` is defined: a repository path for mlnotes, else the module name.

    Never an absolute path: stored notebook outputs must not show the machine.
    """
    module = inspect.getmodule(obj)
    try:
        path = Path(inspect.getsourcefile(obj) or "").resolve()
        return path.relative_to(_PACKAGE_ROOT).as_posix()
    except (TypeError, ValueError):
        return module.__name__ if module is not None else "<unknown>"


def _docstring_lines(tree: ast.AST) -> set[int]:
    """1-based line numbers of every docstring of a function, class or module in `tree`."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def _without_docstrings(source: str) -> str:
    lines = source.splitlines()
    drop = _docstring_lines(ast.parse(source))
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop]
    # A body that was only a docstring would no longer parse; keep it valid Python.
    result = "\n".join(kept)
    try:
        ast.parse(result)
    except SyntaxError:
        return source
    return result


def _class_members(cls: type, source: str, members: Sequence[str]) -> str:
    """The class statement of `source` with only the methods named in `members`."""
    tree = ast.parse(source)
    node = tree.body[0]
    if not isinstance(node, ast.ClassDef):
        raise TypeError("members applies to classes only")
    lines = source.splitlines()
    by_name = {
        item.name: item
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    missing = [name for name in members if name not in by_name]
    if missing:
        raise ValueError(f"members names {missing} that {cls.__name__} does not define in its own body; it defines {sorted(by_name)}")
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    body_start = node.body[0].lineno
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body_start = (first.end_lineno or first.lineno) + 1  # keep the class docstring
    parts = ["\n".join(lines[start - 1 : body_start - 1])]
    for name in members:
        item = by_name[name]
        first_line = min([item.lineno] + [d.lineno for d in item.decorator_list])
        parts.append("\n".join(lines[first_line - 1 : item.end_lineno]))
    indent = re.match(r"\s*", lines[node.body[0].lineno - 1]).group(0)  # type: ignore[union-attr]  # always matches
    parts.append(f"{indent}# (other members not shown)")
    return "\n\n".join(parts)


def get_source(obj: Any, *, members: Sequence[str] | None = None, docstrings: bool = True) -> str:
    """The source code of a function, class, method or module, as text.

    Parameters
    ----------
    obj : function, class, method or module
        What to show.
    members : sequence of str, optional
        For a class: show only the class statement (and its docstring) and these
        methods, in this order.
    docstrings : bool, default True
        Keep docstrings. ``False`` shows the bare code, for long numpydoc
        docstrings that the chapter's prose already explains.

    Returns
    -------
    str
        The dedented source, first line a comment naming the file
        (``# mlnotes/ensembles/random_forest.py``) or module it comes from.

    Raises
    ------
    TypeError
        If the source of `obj` cannot be found (a built-in, an instance), or
        `members` is given for something that is not a class.
    ValueError
        If `members` is empty or names something the class does not define.
    """
    target = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(target, (staticmethod, classmethod)):
        target = target.__func__
    if isinstance(target, property) and target.fget is not None:
        target = target.fget
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (TypeError, OSError) as error:
        raise TypeError(f"obj must be a function, class, method or module with source code, got {obj!r}") from error
    if members is not None:
        if isinstance(members, str) or not members:
            raise ValueError(f"members must be a non-empty list of names, got {members!r}")
        if not inspect.isclass(target):
            raise TypeError(f"members applies to classes only, got {type(obj).__name__}")
        source = _class_members(target, source, list(members))
    if not docstrings:
        source = _without_docstrings(source)
    return f"# {_origin(target)}\n{source.rstrip()}\n"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def show_source(obj: Any, *, members: Sequence[str] | None = None, docstrings: bool = True) -> None:
    """Show the source of `obj`: highlighted in a notebook, printed elsewhere.

    In a Jupyter kernel the code is displayed as a Markdown ``python`` code block,
    which Jupyter and the built book both render with syntax highlighting.

    Parameters
    ----------
    obj : function, class, method or module
        What to show.
    members : sequence of str, optional
        For a class: only these methods (see :func:`get_source`).
    docstrings : bool, default True
        Keep docstrings (see :func:`get_source`).
    """
    source = get_source(obj, members=members, docstrings=docstrings)
    if not _in_notebook():
        print(source, end="")
        return
    from IPython.display import Markdown, display

    # The fence must be longer than any run of backticks inside the code.
    longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    display(Markdown(f"{fence}python\n{source}{fence}"))
