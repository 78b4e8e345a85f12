"""The training curve: a figure updated in place, a few times per epoch at most.

Modes (environment variable ``D2L_PLOT``):
  ``live``  — inside Jupyter: one output updated in place (the default in a kernel);
  ``final`` — only the final figure is emitted (the build and nbval set it);
  ``none``  — nothing displayed; ``board.fig`` can still be saved (the default outside Jupyter).
Figures are SVG without a date and with fixed ids, so executed notebooks are reproducible.
"""

from __future__ import annotations

import io
import os
import time
from collections import defaultdict
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.layout_engine import TightLayoutEngine

from .hyperparams import HyperParameters

PLOT_ENV = "D2L_PLOT"
MODES = ("live", "final", "none")
XLABEL = "époque"  # the x label when none is given
# A curve is drawn under a d2l key ('train_ppl', 'val_loss': history keys, unchanged) and shown
# in the legend in French: « perplexité d'entraînement », « perte de validation ».
METRICS = {"ppl": "perplexité", "loss": "perte", "acc": "exactitude"}
SPLITS = {"train_": "d'entraînement", "val_": "de validation"}


def legend_label(key: str) -> str:
    """The legend of the curve ``key``: French for the trainer's keys, else ``key`` itself."""
    for prefix, split in SPLITS.items():
        metric = METRICS.get(key.removeprefix(prefix)) if key.startswith(prefix) else None
        if metric:
            return f"{metric} {split}"
    return key


def plot_mode() -> str:
    """The display mode: $D2L_PLOT, else ``live`` in a Jupyter kernel and ``none`` elsewhere."""
    mode = os.environ.get(PLOT_ENV, "").strip()
    if mode:
        if mode not in MODES:
            raise ValueError(f"{PLOT_ENV} doit valoir l'un de {MODES} (reçu : {mode!r})")
        return mode
    try:
        from IPython import get_ipython
    except ImportError:
        return "none"
    shell = get_ipython()
    return "live" if shell is not None and hasattr(shell, "kernel") else "none"


def figure_svg(fig: Figure, crop: bool = True) -> str:
    """The figure as SVG text, byte-identical from one run to the next.

    ``crop`` cuts the image to the figure's content (``bbox_inches="tight"``), at the cost of a
    second rendering: two thirds of the time here.
    """
    buffer = io.StringIO()
    extra = {"bbox_inches": "tight"} if crop else {}
    with rc_context({"svg.hashsalt": "d2l-shim", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, **extra)
    return buffer.getvalue()


def y_tick_labels(ax: Any) -> list[str]:
    """The labels the y axis will show for its current limits, without drawing."""
    axis = ax.yaxis
    return list(axis.get_major_formatter().format_ticks(axis.get_major_locator()()))


class ProgressBoard(HyperParameters):
    """Plot data points as they come (same arguments as d2l's ``ProgressBoard``).

    ``draw`` averages every ``every_n`` points into one, appends it to its line and redraws
    at most every ``min_interval`` seconds; drawing reuses the lines, so its cost does not grow
    with the number of points already drawn. On a figure of its own, the board lays it out
    (``tight_layout``) only when the labels change width, and sends live frames uncropped: a
    third of the cost of a cropped frame. The final figure is cropped.
    """

    def __init__(
        self,
        xlabel=None,
        ylabel=None,
        xlim=None,
        ylim=None,
        xscale="linear",
        yscale="linear",
        ls=("-", "--", "-.", ":"),
        colors=("C0", "C1", "C2", "C3"),
        fig=None,
        axes=None,
        figsize=(3.5, 2.5),
        display=True,
        min_interval=1.0,
    ):
        self.save_hyperparameters()
        self.raw_points = defaultdict(list)
        self.data = defaultdict(lambda: ([], []))  # label -> (xs, ys)
        self.lines = {}
        self._handle = None
        self._last_show = float("-inf")
        self._settings = None
        self._own_figure = False
        self._layout = None  # what the figure was laid out for: (settings, widest y label)

    def draw(self, x: float, y: float, label: str, every_n: int = 1) -> None:
        """Add the point (x, y) to the line ``label`` (averaged over ``every_n`` calls)."""
        raw = self.raw_points[label]
        raw.append((float(x), float(y)))
        if len(raw) < max(1, int(every_n)):
            return
        xs, ys = self.data[label]
        xs.append(sum(p[0] for p in raw) / len(raw))
        ys.append(sum(p[1] for p in raw) / len(raw))
        raw.clear()
        self._update_line(label)
        if self.display and plot_mode() == "live":
            now = time.perf_counter()
            if now - self._last_show >= self.min_interval:
                self._last_show = now
                self.show(final=False)

    def _ensure_axes(self) -> None:
        if self.axes is None:
            if self.fig is None:
                self.fig = Figure(figsize=self.figsize)
                self._own_figure = True
            self.axes = self.fig.add_subplot()
        settings = (self.xscale, self.yscale, self.xlabel, self.ylabel, self.xlim, self.ylim)
        if settings == self._settings:  # set_xscale & co. are costly: only when they change
            return
        self._settings = tuple(list(s) if isinstance(s, list) else s for s in settings)
        ax = self.axes
        ax.set_xscale(self.xscale)
        ax.set_yscale(self.yscale)
        ax.set_xlabel(self.xlabel or XLABEL)
        if self.ylabel:
            ax.set_ylabel(self.ylabel)
        if self.xlim:
            ax.set_xlim(self.xlim)
        if self.ylim:
            ax.set_ylim(self.ylim)

    def _update_line(self, label: str) -> None:
        self._ensure_axes()
        xs, ys = self.data[label]
        line = self.lines.get(label)
        if line is None:
            i = len(self.lines)
            (line,) = self.axes.plot(
                xs,
                ys,
                linestyle=self.ls[i % len(self.ls)],
                color=self.colors[i % len(self.colors)],
                label=legend_label(label),
            )
            self.lines[label] = line
            self.axes.legend()
        else:
            line.set_data(xs, ys)
        self.axes.relim()
        self.axes.autoscale_view(scalex=not self.xlim, scaley=not self.ylim)

    def show(self, final: bool = True) -> None:
        """Display the figure now (updating the previous display in Jupyter).

        ``final=False``: a live frame, uncropped when the board owns its figure.
        """
        if self.fig is None:
            return
        from IPython.display import SVG, display

        if self._own_figure:
            layout = (self._settings, max(map(len, y_tick_labels(self.axes)), default=0))
            if layout != self._layout:
                # as fig.tight_layout(), without its warning on a second call
                TightLayoutEngine().execute(self.fig)
                self._layout = layout
        image = SVG(figure_svg(self.fig, crop=final or not self._own_figure))
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def finish(self) -> None:
        """Flush the figure at the end of training, whatever the mode but ``none``."""
        if self.display and plot_mode() != "none":
            self.show()
