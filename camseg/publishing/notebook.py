"""What a chapter needs from its notebook environment, with fallbacks for a lone notebook.

:func:`glue` is ``myst_nb.glue`` when myst-nb is installed (the book build,
or a Colab copy after ``pip install camseg[book]``), else a stand-in that
shows the value (or nothing, with ``display=False``), so a chapter runs top to
bottom wherever it is opened.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, variable: Any, display: bool = True) -> None:
    """``myst_nb.glue(name, variable, display)``; without myst-nb, ``IPython.display.display(variable)``
    when ``display`` is True (nothing otherwise: the value only feeds the book's text)."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(variable)
        return
    myst_glue(name, variable, display=display)
