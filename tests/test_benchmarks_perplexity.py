"""The perplexity study: its statistics, its table and the runs it still has to do."""

import pytest

from benchmarks import perplexity


def test_rows_d2l_cannot_finish_are_compared_at_its_epochs():
    assert perplexity.row_epochs("tensorflow", "gru", 100) == 30
    assert perplexity.row_epochs("tensorflow", "gru", 10) == 10
    assert perplexity.row_epochs("pytorch", "gru", 100) == 100


def test_t_quantiles_round_the_degrees_of_freedom_down():
    assert perplexity.t95(2.94) == 4.30
    assert perplexity.t95(0.5) == 12.71
    assert perplexity.t95(11) == 2.23
    assert perplexity.t95(31) == 2.0


def test_change_interval_is_welchs():
    # One side without spread: df = 1, half-width 12.71 * sqrt(2 / 2) / 2.
    assert perplexity.change_interval([1.0, 3.0], [2.0, 2.0]) == pytest.approx((0.0, -6.355, 6.355))
    # vs = 0.04 / 3, vd = 0.01 / 3, df = 2.94 -> t = 4.30; half = 4.30 * sqrt(vs + vd) / 6.1.
    change, low, high = perplexity.change_interval([6.0, 6.2, 6.4], [6.0, 6.1, 6.2])
    assert change == pytest.approx(6.2 / 6.1 - 1)
    assert high - change == pytest.approx(4.30 * (0.05 / 3) ** 0.5 / 6.1)
    assert change - low == pytest.approx(high - change)
    assert perplexity.change_interval([6.0], [6.0, 6.2]) == (
        pytest.approx(6.0 / 6.1 - 1),
        None,
        None,
    )


def runs(**ppl):
    """{'lib/framework/model': [ppl per seed]} -> the study's results."""
    out = {"epochs": 100, "runs": {}}
    for key, values in ppl.items():
        for seed, value in enumerate(values):
            out["runs"][f"{key.replace('__', '/')}/{seed}"] = {"val_ppl": value}
    return out


def test_table_judges_the_mean_against_d2l_plus_two_percent():
    results = runs(
        d2l__pytorch__scratch=[6.0, 6.2],
        shim__pytorch__scratch=[6.1, 6.3],  # +1.6 %
        d2l__mxnet__gru=[6.0, 6.0],
        shim__mxnet__gru=[6.2, 6.3],  # +4.2 %
        d2l__tensorflow__gru=[7.0],
        shim__tensorflow__gru=[7.0],
    )
    results["runs"]["shim/mxnet/gru/2"] = {"error": "DeadKernelError"}
    text = perplexity.table(results)
    assert "| pytorch | scratch | 100 | 6.10 ± 0.14 | 6.20 ± 0.14 | 2 + 2 | +1.6 % |" in text
    # d2l without spread: df = 1, half-width 12.71 * (0.005 / 2) ** 0.5 / 6.0 = 10.6 %.
    assert "| mxnet | gru | 100 | 6.00 ± 0.00 | 6.25 ± 0.07 | 2 + 2 | +4.2 % " in text
    assert "| +4.2 % | -6.4 … +14.8 % | **not met** |" in text
    # pytorch scratch: df = 2, half-width 4.30 * (0.01 + 0.01) ** 0.5 / 6.1 = 10.0 %.
    assert "| +1.6 % | -8.3 … +11.6 % | met |" in text
    assert (
        "| tensorflow | gru | 30 | 7.00 ± 0.00 | 7.00 ± 0.00 | 1 + 1 | +0.0 % | – | met |" in text
    )
    assert "Failed: shim/mxnet/gru/2: DeadKernelError" in text
    assert "Capped: tensorflow gru: d2l 1.0.3's TensorFlow GRU leaks" in text
    assert "compared at 30 epochs" in text


def test_pending_runs_skip_done_ones_and_retry_failures():
    results = runs(d2l__pytorch__gru=[6.0])
    results["runs"]["shim/pytorch/gru/0"] = {"error": "timeout"}
    todo = perplexity.pending(results, [0, 1], ["pytorch"], ["gru"], ["d2l", "shim"])
    assert todo == [
        ("shim", "pytorch", "gru", 0),
        ("d2l", "pytorch", "gru", 1),
        ("shim", "pytorch", "gru", 1),
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0,x"], "--seeds: comma-separated integers"),
        (["--jobs", "0"], "--jobs: at least 1"),
        (["--models", "lstm"], "--models: unknown ['lstm']"),
    ],
)
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        perplexity.main(argv)
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.mxnet
def test_seeded_alike_d2l_and_the_shim_train_the_same_mxnet_epoch():
    """The study's runs, end to end: both libraries seeded alike draw the same initial weights
    and batches in MXNet, and train them alike (another seed moves the result by ~1e-3)."""
    from benchmarks.train_speed import run_one

    runs = {
        lib: run_one(lib, "mxnet", "scratch", 1, timeout=300, seed=3, draw=False, threads=1)
        for lib in ("d2l", "shim")
    }
    assert "error" not in runs["d2l"] and "error" not in runs["shim"], runs
    assert runs["shim"]["val_ppl"] == pytest.approx(runs["d2l"]["val_ppl"], rel=1e-5)
