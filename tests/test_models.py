"""The shim's models, once per framework: NumPy reference, training, generation, bad input.

Each test takes the ``fw`` fixture (conftest.py): it runs for every framework installed, with
that framework's marker (``-m tensorflow`` selects one). What differs between frameworks lives
in their adapters (frameworks.py); tests of a behaviour found in one framework only are in
test_models_<framework>.py.
"""

import numpy as np
import pytest
import reference_rnn as ref
from test_api import REQUIRED

T, B, D, H, V = 5, 3, 7, 4, 28  # num_steps, batch_size, num_inputs, num_hiddens, vocab_size
ATOL = 1e-5


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def data(fw):
    """Sizes multiple of the batch size: one batch shape (TensorFlow: one trace per step)."""
    return fw.d2l.TimeMachine(batch_size=256, num_steps=16, num_train=2048, num_val=512)


def close(fw, actual, expected):
    np.testing.assert_allclose(fw.numpy(actual), expected, rtol=0, atol=ATOL)


def language_models(fw, h=32):
    d2l = fw.d2l
    return {
        "stacked scratch": lambda: d2l.RNNLMScratch(d2l.StackedRNNScratch(V, h, 2), V, lr=2),
        "scratch": lambda: d2l.RNNLMScratch(d2l.RNNScratch(V, h), V, lr=2),
        "gru": lambda: d2l.RNNLM(fw.gru(V, h, 2), V, lr=2),
        "rnn": lambda: d2l.RNNLM(fw.rnn(V, h), V, lr=2),
    }


def fit(fw, make, data, epochs=2, seed=0, **trainer_args):
    """Seed, make the model, fit it: the trainer (and its history)."""
    fw.d2l.set_seed(seed)
    model = make()
    trainer = fw.d2l.Trainer(max_epochs=epochs, **trainer_args)
    trainer.fit(model, data)
    return trainer


# ---- public names and devices ----------------------------------------------------------------
def test_exports_the_contract_names(fw):
    assert set(fw.d2l.__all__) == REQUIRED
    assert all(hasattr(fw.d2l, name) for name in fw.d2l.__all__)


def test_glue_is_the_common_one_and_takes_a_framework_scalar(fw):
    from d2l_shim import _common

    assert fw.d2l.glue is _common.glue
    loss = fw.tensor(np.array(2.0, dtype=np.float32))  # a 0-d tensor, e.g. a mean loss
    assert fw.d2l.glue("mean_loss", float(loss), fmt=".2f") == "2,00"
    assert _common.recorded()["mean_loss"] == "2,00"


def test_devices(fw):
    d2l = fw.d2l
    assert d2l.cpu() == fw.native_cpu
    assert d2l.try_gpu() == (d2l.gpu() if d2l.num_gpus() else d2l.cpu())
    assert d2l.try_gpu(99) == d2l.cpu()
    with pytest.raises(ValueError, match=r"gpu\((i=)?5\)"):
        d2l.gpu(5)


def test_fallback_to_cpu_prints_one_line(fw, data, capsys):
    if fw.d2l.num_gpus():
        pytest.skip("a GPU is present: no fallback to test")
    trainer = fw.d2l.Trainer(max_epochs=1, num_gpus=1)
    assert trainer.device == fw.d2l.cpu()
    trainer.fit(language_models(fw)["rnn"](), data)
    lines = [line for line in capsys.readouterr().out.splitlines() if "num_gpus=1" in line]
    assert len(lines) == 1 and "cpu" in lines[0]


# ---- forward passes against the NumPy reference ----------------------------------------------
def test_rnn_scratch_matches_reference(fw, rng):
    (p,) = ref.random_rnn_layers(rng, D, H, 1)
    X, H0 = rng.normal(size=(T, B, D)), rng.normal(size=(B, H)).astype(np.float32)
    rnn = fw.d2l.RNNScratch(D, H)
    fw.set_scratch(rnn, p)
    for state, H_init in [(None, 0 * H0), (fw.tensor(H0), H0), ((fw.tensor(H0),), H0)]:
        outputs, H_T = rnn(fw.tensor(X), state)  # a tensor, or a 1-tuple as d2l passes it
        want, want_H = ref.rnn_layer(X, H_init, p)
        fw.d2l.check_len(outputs, T)
        fw.d2l.check_shape(outputs[0], (B, H))
        np.testing.assert_allclose(np.stack([fw.numpy(o) for o in outputs]), want, atol=ATOL)
        close(fw, H_T, want_H)


def test_stacked_rnn_scratch_matches_reference(fw, rng):
    layers = ref.random_rnn_layers(rng, D, H, 2)
    X = rng.normal(size=(T, B, D))
    stacked = fw.d2l.StackedRNNScratch(D, H, 2)
    for layer, p in zip(stacked.rnns, layers, strict=True):
        fw.set_scratch(layer, p)
    given = [rng.normal(size=(B, H)).astype(np.float32) for _ in layers]
    for Hs in (None, given):
        states = None if Hs is None else [fw.tensor(h) for h in Hs]
        outputs, H_T = stacked(fw.tensor(X), states)
        want, want_H = ref.stacked(ref.rnn_layer, X, layers, Hs)
        fw.d2l.check_shape(outputs, (T, B, H))
        fw.d2l.check_len(H_T, 2)
        close(fw, outputs, want)
        for got, expected in zip(H_T, want_H, strict=True):
            close(fw, got, expected)
        if states is not None:  # the caller's list is left alone
            assert states[0] is not H_T[0]
            close(fw, states[0], given[0])


def concise_block(fw, rng, kind, num_inputs, num_layers):
    """A concise RNN or GRU block with the reference's random weights, and those layers."""
    if kind == "rnn":  # d2l's concise RNN has one layer
        layers, block = ref.random_rnn_layers(rng, num_inputs, H, 1), fw.rnn(num_inputs, H)
    else:
        layers = ref.random_gru_layers(rng, num_inputs, H, num_layers)
        block = fw.gru(num_inputs, H, num_layers)
    fw.set_concise(block, layers, kind)
    return block, layers


@pytest.mark.parametrize(("kind", "num_layers"), [("rnn", 1), ("gru", 1), ("gru", 2)])
def test_concise_matches_reference(fw, rng, kind, num_layers):
    block, layers = concise_block(fw, rng, kind, D, num_layers)
    layer_fn = ref.rnn_layer if kind == "rnn" else ref.gru_layer
    X = rng.normal(size=(T, B, D))
    given = [rng.normal(size=(B, H)).astype(np.float32) for _ in layers]
    for Hs in (None, given):
        state = None if Hs is None else fw.initial_state(Hs, kind)
        outputs, H_T = block(fw.tensor(X)) if Hs is None else block(fw.tensor(X), state)
        want, want_H = ref.stacked(layer_fn, X, layers, Hs)
        fw.d2l.check_shape(outputs, (T, B, H))
        close(fw, outputs, want)
        states = fw.final_states(H_T)  # one (batch_size, h) array per layer
        assert len(states) == num_layers
        for got, expected in zip(states, want_H, strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_language_models_match_reference(fw, rng, kind):
    w = ref.random_language_model(rng, kind, V, 32)
    X = rng.integers(0, V, size=(B, T))
    Y = fw.language_model(w)(fw.tensor(X))
    fw.d2l.check_shape(Y, (B, T, V))
    close(fw, Y, ref.language_model(X, w))


def test_loss_is_the_cross_entropy_and_stays_finite(fw, rng):
    model = language_models(fw)["scratch"]()
    logits = rng.normal(size=(2, 3, V)).astype(np.float32)
    labels = rng.integers(0, V, size=(2, 3))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    want = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0].reshape(-1)
    close(fw, model.loss(fw.tensor(logits), fw.tensor(labels), averaged=False), want)
    assert float(fw.numpy(model.loss(fw.tensor(logits), fw.tensor(labels)))) == pytest.approx(
        want.mean(), rel=1e-5
    )
    logits[0, 0, labels[0, 0] - 1] = 200.0  # the right token at probability e^-200: underflow
    loss = fw.numpy(model.loss(fw.tensor(logits), fw.tensor(labels), averaged=False))
    assert np.isfinite(loss).all() and loss[0] > 87


# ---- parameters ------------------------------------------------------------------------------
def built(fw, model):
    """The model after one forward pass (some frameworks create weights on the first call)."""
    model(fw.tensor(np.zeros((1, 8), np.int64)))
    return model


def test_parameter_counts(fw):
    rnn = 2876 + (fw.rnn_biases - 1) * 32  # as the scratch RNN, plus a second bias or not
    sizes = {"stacked scratch": 4956, "scratch": 2876, "gru": 13212, "rnn": rnn}
    for name, make in language_models(fw).items():
        params = fw.parameters(built(fw, make()))
        assert sum(p.size for p in params.values()) == sizes[name], name


@pytest.mark.parametrize("name", ["stacked scratch", "scratch", "gru", "rnn"])
def test_one_step_changes_every_parameter(fw, name):
    one_batch = fw.d2l.TimeMachine(batch_size=64, num_steps=8, num_train=64, num_val=64)
    fw.d2l.set_seed(0)
    model = built(fw, language_models(fw)[name]())
    before = fw.parameters(model)
    fit(fw, lambda: model, one_batch, epochs=1, gradient_clip_val=1)  # one batch: one step
    after = fw.parameters(model)
    assert before.keys() == after.keys() and before
    unchanged = [k for k in before if np.array_equal(before[k], after[k])]
    assert not unchanged, f"{name}: parameters not trained: {unchanged}"


# ---- training --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["stacked scratch", "gru"])
def test_short_training_lowers_perplexity(fw, data, name):
    trainer = fit(fw, language_models(fw)[name], data, epochs=3, gradient_clip_val=1)
    val = [ppl for _, ppl in trainer.history["val_ppl"]]
    assert len(val) == 3 and val[-1] < val[0] < V and val[-1] < 21  # uniform guess: 28
    assert "train_ppl" in trainer.history and len(trainer.epoch_times) == 3
    axes = trainer.model.board.axes  # the figure a reader sees: French labels
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == ["perplexité d'entraînement", "perplexité de validation"]
    assert axes.get_xlabel() == "époque"


def test_seeded_runs_give_identical_losses(fw, data):
    make = language_models(fw)["stacked scratch"]
    runs = [fit(fw, make, data, seed=0, gradient_clip_val=1) for _ in range(2)]
    assert runs[0].history == runs[1].history


def test_epoch_cap_from_environment(fw, data, monkeypatch):
    monkeypatch.setenv("D2L_MAX_EPOCHS", "1")
    trainer = fit(fw, language_models(fw)["gru"], data, epochs=100)
    assert trainer.max_epochs == 1 and len(trainer.epoch_times) == 1


def test_nan_loss_stops_training(fw, data):
    model = language_models(fw)["rnn"]()
    cross_entropy = model.loss
    model.loss = lambda Y_hat, Y, averaged=True: cross_entropy(Y_hat, Y, averaged) * np.nan
    with pytest.raises(FloatingPointError, match=r"lr=2.*gradient_clip_val=0\b"):
        fit(fw, lambda: model, data)


def test_huge_lr_without_clipping_diverges(fw, data):
    def make():
        return fw.d2l.RNNLMScratch(fw.d2l.RNNScratch(V, 32), V, lr=1e30)

    with pytest.raises(FloatingPointError, match=r"lr=1e\+30.*gradient_clip_val=0\b"):
        fit(fw, make, data, epochs=2)  # MXNet: a finite loss, too high after epoch 1


# ---- gradient norms per group ---------------------------------------------------------------
def layer_groups(model):
    """Three groups that split the stacked scratch model, and the whole model."""
    return {
        "couche 1": model.rnn.rnns[0],
        "couche 2": model.rnn.rnns[1],
        "sortie": [model.W_hq, model.b_q],
        "modèle": model,
    }


def one_step(fw, clip):
    """One SGD step (lr 2) on one batch: the trainer, the parameters before and after."""
    one_batch = fw.d2l.TimeMachine(batch_size=64, num_steps=8, num_train=64, num_val=64)
    fw.d2l.set_seed(0)
    model = built(fw, language_models(fw)["stacked scratch"]())
    before = fw.parameters(model)
    trainer = fit(
        fw,
        lambda: model,
        one_batch,
        1,
        gradient_clip_val=clip,
        grad_norm_groups=layer_groups(model),
    )
    return trainer, before, fw.parameters(model)


def applied_norm(before, after, lr, keep=lambda name: True):
    """||before - after|| / lr: the norm of the gradient that plain SGD applied."""
    squares = [((before[k] - after[k]).astype(np.float64) ** 2).sum() for k in before if keep(k)]
    assert squares
    return float(np.sqrt(sum(squares))) / lr


def test_grad_norms_are_the_group_gradient_norms_before_clipping(fw):
    free, before, after = one_step(fw, clip=0)
    norms = {name: points for name, points in free.grad_norms.items()}
    assert list(norms) == ["couche 1", "couche 2", "sortie", "modèle"]
    assert all(len(points) == 1 and points[0][0] == 0.0 for points in norms.values())
    (_, total), (_, out) = norms["modèle"][0], norms["sortie"][0]
    assert total == pytest.approx(applied_norm(before, after, 2), rel=1e-3)
    is_output = lambda name: "W_hq" in name or "b_q" in name  # noqa: E731
    assert out == pytest.approx(applied_norm(before, after, 2, is_output), rel=1e-3)
    parts = sum(norms[name][0][1] ** 2 for name in ("couche 1", "couche 2", "sortie"))
    assert parts == pytest.approx(total**2, rel=1e-4)  # the three groups split the model
    assert all(norms[name][0][1] > 0 for name in ("couche 1", "couche 2"))
    # clipping at a tenth of the norm: the step applies the clipped gradient, the record
    # keeps the norm before clipping
    clipped, before, after = one_step(fw, clip=total / 10)
    assert applied_norm(before, after, 2) == pytest.approx(total / 10, rel=1e-3)
    for name, points in clipped.grad_norms.items():
        assert points == [(0.0, pytest.approx(norms[name][0][1], rel=1e-5))], name


def test_grad_norms_one_entry_per_step_in_order(fw, data):
    def make():
        return language_models(fw)["scratch"]()

    fw.d2l.set_seed(0)
    model = make()
    trainer = fit(
        fw, lambda: model, data, 2, gradient_clip_val=1, grad_norm_groups={"rnn": model.rnn}
    )
    steps = 2 * trainer.num_train_batches
    xs = [x for x, _ in trainer.grad_norms["rnn"]]
    assert xs == [i / trainer.num_train_batches for i in range(steps)]  # as history's epochs
    assert all(np.isfinite(n) and n > 0 for _, n in trainer.grad_norms["rnn"])
    again = fit(fw, make, data, 1)  # no groups: nothing recorded
    assert again.grad_norms == {}


def test_grad_norm_groups_must_belong_to_the_model(fw, data):
    other = language_models(fw)["scratch"]()
    built(fw, other)
    model = language_models(fw)["scratch"]()
    trainer = fw.d2l.Trainer(max_epochs=1, grad_norm_groups={"autre": [other.W_hq]})
    with pytest.raises(ValueError, match=r"grad_norm_groups\['autre'\]"):
        trainer.fit(model, data)


# ---- data, generation, bad input -------------------------------------------------------------
def test_token_batches(fw, data):
    X, Y = next(iter(data.train_dataloader()))
    assert fw.token_dtype in str(X.dtype) and tuple(X.shape) == (256, 16)
    np.testing.assert_array_equal(fw.numpy(X)[:, 1:], fw.numpy(Y)[:, :-1])  # shifted by one


@pytest.mark.parametrize("name", ["scratch", "gru"])
def test_predict_length_devices_and_unknown_characters(fw, data, name):
    fw.d2l.set_seed(0)
    model, vocab = language_models(fw)[name](), data.vocab
    text = model.predict("it has", 20, vocab)
    assert isinstance(text, str) and text.startswith("it has")
    assert len(text[6:].replace("<unk>", "?")) == 20  # 20 tokens, <unk> among them
    assert len(model.predict("x", 0, vocab)) == 1
    for device in (None, fw.d2l.cpu(), fw.d2l.try_gpu()):
        assert model.predict("it has", 20, vocab, device) == text
    assert model.predict("É t#", 2, vocab).startswith("<unk> t<unk>")  # out of vocabulary
    for device in ("toaster", 3.5, "/GPU:7"):
        with pytest.raises(ValueError, match="device"):
            model.predict("it", 3, vocab, device=device)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("num_inputs", lambda fw: fw.d2l.RNNScratch(0, 4)),
        ("num_hiddens", lambda fw: fw.d2l.RNNScratch(4, 0)),
        ("num_hiddens", lambda fw: fw.d2l.StackedRNNScratch(4, -1, 2)),
        ("num_layers", lambda fw: fw.d2l.StackedRNNScratch(4, 4, 0)),
        ("num_hiddens", lambda fw: fw.rnn(4, 0)),
        ("num_hiddens", lambda fw: fw.gru(4, 0, 2)),
        ("num_layers", lambda fw: fw.gru(4, 4, 0)),
        ("dropout", lambda fw: fw.gru(4, 4, 2, dropout=1.5)),
        ("vocab_size", lambda fw: fw.d2l.RNNLMScratch(fw.d2l.RNNScratch(4, 4), 0)),
        ("lr", lambda fw: fw.d2l.RNNLMScratch(fw.d2l.RNNScratch(4, 4), 4, lr=0)),
        ("lr", lambda fw: fw.d2l.RNNLM(fw.gru(4, 4, 1), 4, lr=-1)),
        ("batch_size", lambda fw: fw.d2l.TimeMachine(batch_size=0, num_steps=8)),
        ("num_steps", lambda fw: fw.d2l.TimeMachine(batch_size=8, num_steps=0)),
        ("num_steps", lambda fw: fw.d2l.TimeMachine(batch_size=8, num_steps=10**7)),
        ("max_epochs", lambda fw: fw.d2l.Trainer(max_epochs=0)),
        ("num_gpus", lambda fw: fw.d2l.Trainer(max_epochs=1, num_gpus=-1)),
        ("gradient_clip_val", lambda fw: fw.d2l.Trainer(max_epochs=1, gradient_clip_val=-1)),
        ("gpu", lambda fw: fw.d2l.gpu(5)),
        ("grad_norm_groups", lambda fw: fw.d2l.Trainer(max_epochs=1, grad_norm_groups=[1])),
        ("grad_norm_groups", lambda fw: fw.d2l.Trainer(max_epochs=1, grad_norm_groups={})),
        (
            r"grad_norm_groups\['x'\].*int",
            lambda fw: fw.d2l.Trainer(max_epochs=1, grad_norm_groups={"x": 3}),
        ),
        (
            r"grad_norm_groups\['x'\]",
            lambda fw: fw.d2l.Trainer(max_epochs=1, grad_norm_groups={"x": []}),
        ),
        (
            r"grad_norm_groups\['x'\] : 'W'",
            lambda fw: fw.d2l.Trainer(max_epochs=1, grad_norm_groups={"x": ["W"]}),
        ),
    ],
)
def test_bad_input_names_the_parameter(fw, name, make):
    with pytest.raises(ValueError, match=name):
        make(fw)
