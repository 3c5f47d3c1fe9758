"""What every playground shares: controls, a rendered figure, a summary, a static twin.

A playground is displayed by returning it from a cell. Its display is one MIME
bundle holding both the live widget (``application/vnd.jupyter.widget-view+json``)
and a static PNG of the same idea swept over a few settings (``image/png``):

- a front end that renders widgets (JupyterLab, Notebook 7, VS Code) picks the widget;
- one that does not (nbval, ``nbconvert --execute``, GitHub, a saved notebook without
  widget state) shows the PNG.

So the front end, which is the only party that knows, decides, and nothing in the
kernel has to guess whether a widget front end is listening. ``static=True`` (or the
environment variable ``MMCOURSE_STATIC_WIDGETS=1``) forces the static figure alone;
``static=False`` the widget alone.
"""
from __future__ import annotations

import base64
import html
import io
import os

import numpy as np

__all__ = ["Playground", "static_requested", "STATIC_ENV"]

STATIC_ENV = "MMCOURSE_STATIC_WIDGETS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def static_requested(static: bool | None = None) -> bool | None:
    """``True``: static figure only; ``False``: widget only; ``None``: both, the front end picks.

    An explicit argument wins; otherwise ``MMCOURSE_STATIC_WIDGETS`` decides (unset means ``None``).
    """
    if static is not None:
        if not isinstance(static, bool):
            raise TypeError(f"static must be True, False or None, got {static!r}")
        return static
    value = os.environ.get(STATIC_ENV)
    if value is None:
        return None
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return None
    raise ValueError(f"{STATIC_ENV}={value!r} is not understood; use 1 (static plots only) or 0 / unset (widgets)")


def new_figure(width: float, height: float, layout: str | None = None):
    """A matplotlib Figure that pyplot does not know about (so the inline backend never shows it twice).

    No layout engine by default: constrained layout costs an extra draw pass per render,
    which a slider that redraws on every move cannot afford; callers place axes with
    ``subplots_adjust``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def as_matrix(x, name: str, ndim: int = 2) -> np.ndarray:
    """A finite float64 numpy array of ``ndim`` dimensions from a tensor / array / nested list."""
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().double().numpy()  # float64 keeps parity with float64 references
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a {ndim}-D array or tensor of numbers, got {type(x).__name__}") from err
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(arr.shape)})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def escape(text) -> str:
    return html.escape(str(text))


class Playground:
    """Base class: subclasses fill ``self.controls`` and implement ``figure`` and ``static_figure``.

    Attributes
    ----------
    controls : dict[str, ipywidgets.Widget]
        The inputs, by name (tests and notebooks set ``controls["temperature"].value``).
    image : ipywidgets.Image
        The current figure as PNG bytes; re-rendered whenever a control changes.
    summary : ipywidgets.HTML
        The current numbers in words (and any input error, in red).
    widget : ipywidgets.VBox
        Controls, image and summary, ready to display.
    """

    title = "playground"
    dpi = 80  # resolution of the rendered figures

    def __init__(self, static: bool | None = None):
        import ipywidgets as W

        self.static = static_requested(static)
        self.controls: dict = {}
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.summary = W.HTML()
        self.error: str | None = None
        self.renders = 0  # how many times the live figure was drawn
        self._widget = None

    # -- subclasses implement ---------------------------------------------------------
    def figure(self):
        """The figure for the current control values."""
        raise NotImplementedError

    def static_figure(self):
        """The static twin: the same idea at a few fixed settings, for front ends without widgets."""
        raise NotImplementedError

    def summary_html(self) -> str:
        return ""

    # -- shared machinery -------------------------------------------------------------
    def _watch(self) -> None:
        """Re-render when any control changes; draw once now unless only the static figure is wanted."""
        for control in self.controls.values():
            control.observe(self.refresh, names="value")
        if self.static is not True:
            self.refresh()

    @property
    def widget(self):
        if self._widget is None:
            import ipywidgets as W

            if self.renders == 0 and self.error is None:
                self.refresh()
            header = W.HTML(f"<b>{escape(self.title)}</b>")
            self._widget = W.VBox([header, *self._layout_controls(), self.image, self.summary])
            self._widget.add_class("mmcourse-playground")
        return self._widget

    def refresh(self, change=None) -> None:
        """Redraw the figure and the summary. Bad input shows an error and keeps the last good figure."""
        try:
            fig = self.figure()
            summary = self.summary_html()
        except (ValueError, KeyError, IndexError, TypeError) as err:
            self.error = str(err)
            self.summary.value = f'<span style="color:#b00020"><b>Input error:</b> {escape(err)}</span>'
            return
        self.error = None
        self.image.value = png_bytes(fig, self.dpi)
        self.renders += 1
        self.summary.value = summary

    def _layout_controls(self) -> list:
        return list(self.controls.values())

    def static_png(self) -> bytes:
        return png_bytes(self.static_figure(), self.dpi)

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = f"<{type(self).__name__}: {self.title}; open in JupyterLab for the interactive version>"
        data: dict = {"text/plain": text}
        if self.static is not True:
            data.update(self.widget._repr_mimebundle_())
            data["text/plain"] = text
        if self.static is not False:
            data["image/png"] = base64.b64encode(self.static_png()).decode("ascii")
        return data

    def show_static(self):
        """Display the static figure (whatever the front end)."""
        from IPython.display import Image, display

        display(Image(self.static_png()))
