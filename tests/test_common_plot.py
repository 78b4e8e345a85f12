"""The training curve: averaging, constant cost per draw, reproducible SVG, display modes."""

import pytest
from matplotlib.lines import Line2D

from d2l_shim._common import PLOT_ENV, ProgressBoard, figure_svg, legend_label, plot_mode
from d2l_shim._common import plot as plot_module


def _board(**kwargs):
    board = ProgressBoard(xlabel="epoch", ylabel="ppl", **kwargs)
    for i in range(12):
        board.draw(i / 4, 10 - i / 2, "train_ppl", every_n=2)
        board.draw(i / 4, 9 - i / 3, "val_ppl", every_n=4)
    return board


# ---- modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["live", "final", "none"])
def test_plot_mode_from_the_environment(monkeypatch, mode):
    monkeypatch.setenv(PLOT_ENV, mode)
    assert plot_mode() == mode


def test_plot_mode_outside_jupyter_is_none(monkeypatch):
    monkeypatch.delenv(PLOT_ENV, raising=False)
    assert plot_mode() == "none"


@pytest.mark.parametrize("mode", ["svg", "LIVE", "yes"])
def test_plot_mode_invalid(monkeypatch, mode):
    monkeypatch.setenv(PLOT_ENV, mode)
    with pytest.raises(ValueError, match=PLOT_ENV):
        plot_mode()


# ---- points ----------------------------------------------------------------------------------
def test_draw_averages_every_n_points(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "none")
    board = ProgressBoard()
    for i in range(7):
        board.draw(i, 10 * i, "loss", every_n=3)
    xs, ys = board.data["loss"]
    assert xs == [1.0, 4.0] and ys == [10.0, 40.0]  # means of (0,1,2) and (3,4,5)
    assert board.raw_points["loss"] == [(6.0, 60.0)]  # waiting for two more
    line = board.lines["loss"]
    assert list(line.get_xdata()) == xs and list(line.get_ydata()) == ys


def test_draw_every_n_below_one_draws_each_point(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "none")
    board = ProgressBoard()
    for i in range(3):
        board.draw(i, i, "loss", every_n=0)
    assert board.data["loss"] == ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])


def test_draw_reuses_one_line_per_label(monkeypatch):
    """The cost of a draw does not grow: one Line2D per label, updated in place."""
    monkeypatch.setenv(PLOT_ENV, "none")
    board = ProgressBoard()
    board.draw(0, 1, "train_loss")
    board.draw(0, 1, "val_loss")
    first_lines = dict(board.lines)
    calls = []
    monkeypatch.setattr(board.axes, "plot", lambda *a, **k: calls.append(a))
    for i in range(1, 200):
        board.draw(i, 1 / i, "train_loss")
        board.draw(i, 2 / i, "val_loss")
    assert calls == []  # no new line was created
    assert board.lines == first_lines
    assert len([a for a in board.axes.get_children() if isinstance(a, Line2D)]) == 2
    assert len(board.axes.lines) == 2
    assert len(board.lines["train_loss"].get_xdata()) == 200
    assert len(board.fig.axes) == 1
    labels = [t.get_text() for t in board.axes.get_legend().get_texts()]
    assert labels == ["perte d'entraînement", "perte de validation"]


@pytest.mark.parametrize(
    ("key", "legend"),
    [
        ("train_ppl", "perplexité d'entraînement"),
        ("val_ppl", "perplexité de validation"),
        ("train_loss", "perte d'entraînement"),
        ("val_loss", "perte de validation"),
        ("val_acc", "exactitude de validation"),
        ("loss", "loss"),  # not a trainer's key: shown as given
        ("train_x", "train_x"),
        ("val_", "val_"),
    ],
)
def test_legend_label(key, legend):
    assert legend_label(key) == legend


def test_labels_are_french_and_keys_stay_d2l(monkeypatch):
    """Legend and x label in French; the data stay under d2l's keys (``history['val_ppl']``)."""
    monkeypatch.setenv(PLOT_ENV, "none")
    board = ProgressBoard()
    board.draw(1, 12.0, "train_ppl")
    board.draw(1, 11.0, "val_ppl")
    labels = [t.get_text() for t in board.axes.get_legend().get_texts()]
    assert labels == ["perplexité d'entraînement", "perplexité de validation"]
    assert board.axes.get_xlabel() == "époque"
    assert set(board.data) == set(board.lines) == {"train_ppl", "val_ppl"}


def test_live_mode_shows_at_most_once_per_min_interval(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "live")
    clock = [100.0]
    monkeypatch.setattr(plot_module.time, "perf_counter", lambda: clock[0])
    board = ProgressBoard(min_interval=1.0)
    shows = []
    monkeypatch.setattr(board, "show", lambda final=True: shows.append(clock[0]))
    for _ in range(300):  # the clock stands still: one display only
        board.draw(clock[0], 1.0, "loss")
    assert shows == [100.0]
    for _ in range(10):  # half a second per draw: every other draw is displayed
        clock[0] += 0.5
        board.draw(clock[0], 1.0, "loss")
    assert shows == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]


def test_live_show_updates_one_display(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "live")
    import IPython.display

    class Handle:
        updates = 0

        def update(self, image):
            assert image.data.lstrip().startswith("<svg")
            Handle.updates += 1

    displays = []

    def fake_display(image, display_id=False):
        displays.append(image)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    board = ProgressBoard(min_interval=0.0)
    for i in range(3):
        board.draw(i, i, "loss")
    board.finish()
    assert len(displays) == 1
    assert Handle.updates == 3  # 2 more draws, then the final figure


def _record_frames(monkeypatch):
    """Fake Jupyter display; returns the list of (crop, layouts so far) of each frame."""
    import IPython.display

    frames, layouts = [], []
    monkeypatch.setenv(PLOT_ENV, "live")
    monkeypatch.setattr(IPython.display, "display", lambda image, display_id=False: Handle())
    monkeypatch.setattr(
        plot_module.TightLayoutEngine, "execute", lambda self, fig: layouts.append(1)
    )
    real = plot_module.figure_svg

    def figure_svg(fig, crop=True):
        frames.append((crop, len(layouts)))
        return real(fig, crop)

    class Handle:
        def update(self, image):
            pass

    monkeypatch.setattr(plot_module, "figure_svg", figure_svg)
    return frames


def test_live_frames_are_uncropped_and_laid_out_when_tick_labels_change_width(monkeypatch):
    frames = _record_frames(monkeypatch)
    board = ProgressBoard(min_interval=0.0)
    # y tick labels: '10.0' (one point), then '10' ... '60' for 10..50, then '1000' and '−200'.
    for i, y in enumerate([10, 20, 30, 40, 50, 1000, 900]):
        board.draw(i, y, "loss")
    board.finish()
    assert [crop for crop, _ in frames] == [False] * 7 + [True]  # only the final one cropped
    assert [layouts for _, layouts in frames] == [1, 2, 2, 2, 2, 3, 3, 3]


def test_a_figure_given_by_the_user_is_always_cropped_and_never_laid_out(monkeypatch):
    from matplotlib.figure import Figure

    frames = _record_frames(monkeypatch)
    board = ProgressBoard(min_interval=0.0, fig=Figure())
    for i in range(3):
        board.draw(i, i, "loss")
    board.finish()
    assert frames == [(True, 0)] * 4


@pytest.mark.parametrize(("mode", "shown"), [("none", 0), ("final", 1)])
def test_final_and_none_modes(monkeypatch, mode, shown):
    monkeypatch.setenv(PLOT_ENV, mode)
    board = ProgressBoard()
    shows = []
    monkeypatch.setattr(board, "show", lambda final=True: shows.append(1))
    for i in range(100):
        board.draw(i, i, "loss")
    assert shows == []  # nothing while training
    board.finish()
    assert len(shows) == shown


def test_display_false_never_shows(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "live")
    board = ProgressBoard(display=False, min_interval=0.0)
    monkeypatch.setattr(board, "show", lambda final=True: pytest.fail("shown"))
    board.draw(0, 0, "loss")
    board.finish()


def test_show_without_points_does_nothing():
    ProgressBoard().show()  # no figure yet: nothing to display, no error


# ---- SVG -------------------------------------------------------------------------------------
def test_figure_svg_is_reproducible_and_undated(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "none")
    svg1, svg2 = figure_svg(_board().fig), figure_svg(_board().fig)
    assert svg1 == svg2
    assert svg1.lstrip().startswith("<?xml") and "<svg" in svg1
    assert "<dc:date>" not in svg1 and "Date" not in svg1


def test_board_limits_and_labels(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "none")
    board = ProgressBoard(xlabel="epoch", ylabel="loss", xlim=[0, 10], yscale="log")
    for i in range(1, 5):
        board.draw(i, 1 / i, "loss")
    ax = board.axes
    assert ax.get_xlim() == (0.0, 10.0)
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"


def test_axes_follow_a_change_of_settings(monkeypatch):
    """The trainer sets ``xlim`` before each fit: a board used twice follows it."""
    monkeypatch.setenv(PLOT_ENV, "none")
    board = ProgressBoard(xlim=[0, 5])
    board.draw(1, 1, "loss")
    assert board.axes.get_xlim() == (0.0, 5.0)
    board.xlim = [0, 20]
    board.draw(2, 2, "loss")
    assert board.axes.get_xlim() == (0.0, 20.0)
    board.xlim[1] = 30  # changed in place
    board.draw(3, 3, "loss")
    assert board.axes.get_xlim() == (0.0, 30.0)
