"""Progress bars: tqdm's (a widget in a notebook, text on a terminal), and transient ones that leave nothing behind.

A transient bar (``leave=False``) disappears when its work is done, so a sweep leaves no pile of finished bars. In
a notebook tqdm closes the bar's widget then, but the cell keeps the output that showed it; JupyterLab draws such an
output as "Error displaying widget: model not found" whenever it draws it after the close (the close arrived before
the view was drawn on a busy page, or the output is drawn again). :func:`progress` shows a transient notebook bar
through a display handle and empties that output before it closes the widget, so no view of a closed widget is left.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def _in_notebook() -> bool:
    """Whether ``tqdm.auto`` chose the notebook (ipywidgets) bar in this process."""
    try:
        from tqdm.notebook import tqdm_notebook
    except ImportError:  # pragma: no cover - tqdm without its notebook module
        return False
    return issubclass(tqdm, tqdm_notebook)


@functools.cache
def _transient_notebook_bar() -> type:
    from IPython.display import display
    from tqdm.notebook import tqdm_notebook

    class TransientNotebookBar(tqdm_notebook):
        """A notebook bar shown through a display handle whose output is emptied before the widget closes."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "leave": False, "display": False})
            self._handle = None
            if not self.disable:
                self._handle = display(self.container, display_id=True)
                self.displayed = True

        def close(self) -> None:
            handle = getattr(self, "_handle", None)
            if not self.disable and handle is not None and not (self.total and self.n < self.total):
                handle.update({"text/plain": ""}, raw=True)  # the view goes before its widget does
            super().close()

    return TransientNotebookBar


def progress(iterable: Iterable | None = None, *, transient: bool = False, **kwargs: Any) -> tqdm:
    """A ``tqdm.auto`` bar over ``iterable`` (``tqdm``'s keywords: ``total``, ``desc``, ``unit``, ``disable``, …).

    ``transient``: the bar disappears when its work is done and, in a notebook, leaves no output behind (module
    docstring). A bar stopped before its total stays, as tqdm leaves it (red in a notebook).
    """
    if not transient:
        return tqdm(iterable, **kwargs)
    if _in_notebook():
        return _transient_notebook_bar()(iterable, **kwargs)
    return tqdm(iterable, **{**kwargs, "leave": False})


__all__ = ["progress"]
