"""Faults a user can cause, the same in every framework: divergence, a device that is absent.

One suite over the three frameworks (the ``d2l`` fixture, from conftest's ``fw``); each case
carries its framework's marker and is skipped where that framework is not installed. Models
and data are tiny.
"""

import importlib

import numpy as np
import pytest

V, H = 28, 16  # vocab_size, num_hiddens


@pytest.fixture
def d2l(fw):
    """The shim module of one framework (conftest's ``fw``: one case per framework installed)."""
    return fw.d2l


@pytest.fixture(scope="module")
def corpus_windows():
    """Two training batches and one validation batch per epoch."""
    return {"batch_size": 256, "num_steps": 16, "num_train": 512, "num_val": 256}


def gru_lm(d2l, lr):
    if d2l.__name__.endswith("torch"):  # PyTorch's layers take their input size
        return d2l.RNNLM(d2l.GRU(V, H, 1), V, lr=lr)
    return d2l.RNNLM(d2l.GRU(H, 1), V, lr=lr)


def scratch_lm(d2l, lr):
    return d2l.RNNLMScratch(d2l.RNNScratch(V, H), V, lr=lr)


# ---- divergence: one rule, in the framework-free loop ----------------------------------------
@pytest.mark.parametrize(
    ("make", "lr"),
    [(gru_lm, 50), (scratch_lm, 1e6)],  # perplexity 3e85; MXNet's clamped loss: 1e31
    ids=["gru-lr50", "scratch-lr1e6"],
)
def test_divergence_stops_training_with_the_hint(d2l, corpus_windows, make, lr, capsys):
    d2l.set_seed(0)
    data = d2l.TimeMachine(**corpus_windows)
    trainer = d2l.Trainer(max_epochs=3)
    with pytest.raises(FloatingPointError) as info:
        trainer.fit(make(d2l, lr), data)
    message = str(info.value)
    assert message.startswith("l'entraînement diverge à l'époque ")
    assert f"lr={lr}" in message and "gradient_clip_val=0" in message


def test_slow_training_near_the_vocabulary_size_is_not_stopped(d2l, corpus_windows, capsys):
    """lr=1e-4 barely moves the weights: the perplexity stays near V, above it at times."""
    d2l.set_seed(0)
    trainer = d2l.Trainer(max_epochs=3)
    trainer.fit(gru_lm(d2l, 1e-4), d2l.TimeMachine(**corpus_windows))
    val = [ppl for _, ppl in trainer.history["val_ppl"]]
    assert len(val) == 3 and all(np.isfinite(val))


# ---- a device the framework does not have: the same ValueError everywhere -------------------
def absent_devices(d2l):
    """Names of a GPU one past the last that the framework sees (cuda:0 on a CPU machine)."""
    n = d2l.num_gpus()
    native = {
        "d2l_shim.torch": lambda: importlib.import_module("torch").device(f"cuda:{n}"),
        "d2l_shim.tensorflow": lambda: f"/GPU:{n}",
        "d2l_shim.mxnet": lambda: importlib.import_module("mxnet").gpu(n),
    }[d2l.__name__]()
    return [f"cuda:{n}", native]


def test_predict_on_an_absent_device_is_a_value_error_naming_it(d2l, corpus_windows):
    vocab = d2l.TimeMachine(**corpus_windows).vocab
    model = gru_lm(d2l, 1)
    for device in absent_devices(d2l):
        with pytest.raises(ValueError, match="device") as info:
            model.predict("it has", 5, vocab, device=device)
        assert repr(device) in str(info.value)
        assert f"({d2l.num_gpus()} GPU visible(s))" in str(info.value)
    assert model.predict("it has", 5, vocab, device=d2l.cpu()).startswith("it has")
