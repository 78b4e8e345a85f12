"""MXNet models against the NumPy reference, training behaviour, bad input, d2l 1.0.3."""

import os
import sys
from pathlib import Path

import numpy as onp
import pytest

mx = pytest.importorskip("mxnet")
from mxnet import np  # noqa: E402
from reference_rnn import (  # noqa: E402
    gru_layer,
    output_layer,
    random_gru_layers,
    random_rnn_layers,
    rnn_layer,
    stacked,
)

from benchmarks.workloads import D2L_STACKED  # noqa: E402
from d2l_shim import mxnet as d2l  # noqa: E402

pytestmark = pytest.mark.mxnet

CONTRACT = {
    "HyperParameters", "ProgressBoard", "Module", "DataModule", "Classifier", "Trainer",
    "TimeMachine", "Vocab", "RNNScratch", "StackedRNNScratch", "RNNLMScratch", "RNN", "GRU",
    "RNNLM", "cpu", "gpu", "num_gpus", "try_gpu", "set_seed", "add_to_class", "check_shape",
    "check_len",
}  # fmt: skip
T, B, D, H, V = 5, 3, 7, 4, 7  # num_steps, batch_size, num_inputs, num_hiddens, vocab_size


def small_data(**kw):
    args = dict(batch_size=256, num_steps=16, num_train=2048, num_val=512) | kw
    return d2l.TimeMachine(**args)


def scratch_lm(vocab_size=28, h=32, layers=2, lr=2):
    return d2l.RNNLMScratch(d2l.StackedRNNScratch(vocab_size, h, layers), vocab_size, lr=lr)


def gru_lm(vocab_size=28, h=32, layers=2, lr=2):
    return d2l.RNNLM(d2l.GRU(h, layers), vocab_size, lr=lr)


def count(model):
    return sum(p.data().size for p in model.collect_params().values())


# ---- copying reference weights into MXNet layouts ------------------------------------------
def set_scratch(layer, p):
    for name in ("W_xh", "W_hh", "b_h"):
        getattr(layer, name).set_data(np.array(p[name]))


def set_gluon_rnn(block, layers, gates):
    """Gluon stacks gates (r, z, n) along the rows of (gates * h, inputs) matrices."""
    for i, p in enumerate(layers):
        if gates == "":  # plain RNN: the reference has one bias, Gluon two
            p = p | {"W_x": p["W_xh"], "W_h": p["W_hh"], "b_x": p["b_h"], "b_h": 0 * p["b_h"]}
        gs = gates or [""]
        for src, dst in (("W_x", "i2h_weight"), ("W_h", "h2h_weight")):
            value = onp.concatenate([p[f"{src}{g}"].T for g in gs])
            getattr(block, f"l{i}_{dst}").set_data(np.array(value))
        for src, dst in (("b_x", "i2h_bias"), ("b_h", "h2h_bias")):
            value = onp.concatenate([p[f"{src}{g}"] for g in gs])
            getattr(block, f"l{i}_{dst}").set_data(np.array(value))


def close(a, b):
    onp.testing.assert_allclose(onp.asarray(a), b, rtol=1e-5, atol=1e-5)


@pytest.fixture
def rng():
    return onp.random.default_rng(0)


# ---- forward passes against the NumPy reference --------------------------------------------
def test_public_names_follow_the_contract():
    assert set(d2l.__all__) == CONTRACT
    assert all(hasattr(d2l, name) for name in d2l.__all__)


@pytest.mark.parametrize("hybridize", [False, True])
def test_rnn_scratch_matches_reference(rng, hybridize):
    (p,) = random_rnn_layers(rng, D, H, 1)
    H0 = rng.normal(size=(B, H)).astype("float32")
    layer = d2l.RNNScratch(D, H)
    set_scratch(layer, p)
    if hybridize:
        layer.hybridize(static_alloc=True)
    for steps in (T, 1, T):  # the compiled graph is rebuilt when num_steps changes
        X = rng.normal(size=(steps, B, D)).astype("float32")
        ref_out, ref_H = rnn_layer(X, H0, p)
        for state in (np.array(H0), (np.array(H0),)):  # a tensor or a 1-tuple, as d2l
            outputs, state = layer(np.array(X), state)
            d2l.check_len(outputs, steps)
            d2l.check_shape(outputs[0], (B, H))
            close(np.stack(outputs).asnumpy(), ref_out)
            close(state.asnumpy(), ref_H)
    assert layer._active is hybridize


def test_hybridized_scratch_layer_has_the_same_gradients(rng):
    (p,) = random_rnn_layers(rng, D, H, 1)
    X = np.array(rng.normal(size=(T, B, D)).astype("float32"))
    grads = []
    for hybridize in (False, True):
        layer = d2l.RNNScratch(D, H)
        set_scratch(layer, p)
        if hybridize:
            layer.hybridize(static_alloc=True)
        with mx.autograd.record():
            outputs, state = layer(X)  # zero initial state
            loss = (np.stack(outputs) ** 2).sum() + (3 * state).sum()
        loss.backward()
        grads.append({n: getattr(layer, n).grad().asnumpy() for n in ("W_xh", "W_hh", "b_h")})
    for name, grad in grads[0].items():
        assert onp.abs(grad).sum() > 0
        close(grads[1][name], grad)


def test_stacked_rnn_scratch_matches_reference(rng):
    layers = random_rnn_layers(rng, D, H, 2)
    X = rng.normal(size=(T, B, D)).astype("float32")
    model = d2l.StackedRNNScratch(D, H, 2)
    for layer, p in zip(model.rnns, layers, strict=True):
        set_scratch(layer, p)
    ref_out, ref_Hs = stacked(rnn_layer, X, layers)
    outputs, Hs = model(np.array(X))
    d2l.check_shape(outputs, (T, B, H))
    close(outputs.asnumpy(), ref_out)
    for H_l, ref in zip(Hs, ref_Hs, strict=True):
        close(H_l.asnumpy(), ref)
    # from given states: the caller's list is left alone
    given = [np.array(h) for h in ref_Hs]
    outputs, Hs = model(np.array(X), given)
    close(outputs.asnumpy(), stacked(rnn_layer, X, layers, ref_Hs)[0])
    assert given[0] is not Hs[0]


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("kind,num_layers", [("rnn", 1), ("gru", 1), ("gru", 2)])
def test_concise_matches_reference(rng, kind, num_layers, hybridize):
    if kind == "rnn":
        layers, model, gates, ref = random_rnn_layers(rng, D, H, 1), d2l.RNN(H), "", rnn_layer
    else:
        layers, gates, ref = random_gru_layers(rng, D, H, num_layers), "rzn", gru_layer
        model = d2l.GRU(H, num_layers)
    model.initialize()
    X = rng.normal(size=(T, B, D)).astype("float32")
    model(np.array(X))  # create the lazy weights
    set_gluon_rnn(model.rnn, layers, gates)
    if hybridize:
        model.hybridize(static_alloc=True)
    outputs, state = model(np.array(X))
    if kind == "gru":  # Gluon's state: a list holding one (num_layers, batch_size, h) tensor
        (state,) = state
    ref_out, ref_Hs = stacked(ref, X, layers)
    d2l.check_shape(outputs, (T, B, H))
    close(outputs.asnumpy(), ref_out)
    close(state.asnumpy(), onp.stack(ref_Hs))  # (num_layers, batch_size, num_hiddens)


def test_language_models_match_reference(rng):
    X = rng.integers(0, V, size=(B, T))
    one_hot = onp.eye(V, dtype="float32")[X.T]  # (T, B, V)
    W_hq = rng.normal(size=(H, V)).astype("float32")
    b_q = rng.normal(size=(V,)).astype("float32")

    layers = random_rnn_layers(rng, V, H, 2)
    scratch = d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V)
    for layer, p in zip(scratch.rnn.rnns, layers, strict=True):
        set_scratch(layer, p)
    scratch.W_hq.set_data(np.array(W_hq))
    scratch.b_q.set_data(np.array(b_q))
    expected = output_layer(stacked(rnn_layer, one_hot, layers)[0], W_hq, b_q)
    close(scratch(np.array(X, dtype="int32")).asnumpy(), expected)

    layers = random_gru_layers(rng, V, H, 2)
    concise = d2l.RNNLM(d2l.GRU(H, 2), V)
    set_gluon_rnn(concise.rnn.rnn, layers, "rzn")
    concise.linear.weight.set_data(np.array(W_hq.T))
    concise.linear.bias.set_data(np.array(b_q))
    expected = output_layer(stacked(gru_layer, one_hot, layers)[0], W_hq, b_q)
    Y = concise(np.array(X, dtype="int32"))
    d2l.check_shape(Y, (B, T, V))
    close(Y.asnumpy(), expected)


def test_parameter_counts():
    assert count(scratch_lm()) == 4956
    assert count(gru_lm()) == 13212


# ---- training ------------------------------------------------------------------------------
MODELS = {  # name: (model, number of weights)
    "stacked scratch": (scratch_lm, 4956),
    "scratch 1 layer": (lambda: d2l.RNNLMScratch(d2l.RNNScratch(28, 32), 28, lr=2), 2876),
    "gru": (gru_lm, 13212),
    "rnn": (lambda: d2l.RNNLM(d2l.RNN(32), 28, lr=2), 2908),
}


@pytest.mark.parametrize("name", MODELS)
def test_one_step_changes_every_parameter(name, capsys):
    d2l.set_seed(0)
    make, size = MODELS[name]
    model = make()
    assert count(model) == size  # every weight is collected, so the optimizer sees it
    before = {k: p.data().asnumpy().copy() for k, p in model.collect_params().items()}
    data = small_data(num_train=256, num_val=256)  # one training batch: one step
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=1)
    trainer.fit(model, data)
    after = {k: p.data().asnumpy() for k, p in model.collect_params().items()}
    assert before.keys() == after.keys()
    unchanged = [k for k in before if onp.array_equal(before[k], after[k])]
    assert not unchanged


def fit(model, data, epochs=2, **kw):
    trainer = d2l.Trainer(max_epochs=epochs, **kw)
    trainer.fit(model, data)
    return trainer


@pytest.mark.parametrize("make", [scratch_lm, gru_lm], ids=["scratch", "gru"])
def test_short_training_lowers_perplexity(make, capsys):
    d2l.set_seed(0)
    data = small_data()
    trainer = fit(make(), data, epochs=3, gradient_clip_val=1)
    val = [ppl for _, ppl in trainer.history["val_ppl"]]
    assert len(val) == 3 and val[-1] < val[0] and val[-1] < 21  # 28 tokens: 28 at random
    assert "train_ppl" in trainer.history and len(trainer.epoch_times) == 3


def test_seeded_runs_are_identical(capsys):
    runs = []
    for _ in range(2):
        d2l.set_seed(0)
        runs.append(
            dict(fit(scratch_lm(), small_data(num_train=1024), gradient_clip_val=1).history)
        )
    assert runs[0] == runs[1]


def test_epoch_cap_from_environment(monkeypatch, capsys):
    monkeypatch.setenv("D2L_MAX_EPOCHS", "1")
    trainer = fit(gru_lm(), small_data(num_train=512), epochs=5)
    assert trainer.max_epochs == 1 and len(trainer.epoch_times) == 1


def test_infinite_loss_stops_training(capsys):
    model = scratch_lm()
    base = model.loss
    model.loss = lambda Y_hat, Y, averaged=True: base(Y_hat, Y, averaged) * float("inf")
    with pytest.raises(FloatingPointError, match="lr=2.*gradient_clip_val"):
        fit(model, small_data(num_train=512))


def test_loss_is_the_cross_entropy_and_stays_finite(rng):
    model = scratch_lm()
    logits = rng.normal(size=(2, 3, 28)).astype("float32")
    labels = rng.integers(0, 28, size=(2, 3))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - onp.log(onp.exp(shifted).sum(axis=-1, keepdims=True))
    expected = -onp.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    loss = model.loss(np.array(logits), np.array(labels, dtype="int32"), averaged=False)
    close(loss.asnumpy(), expected.reshape(-1))
    logits[0, 0, labels[0, 0] - 1] = 200.0  # the right token at probability e^-200: underflow
    loss = model.loss(np.array(logits), np.array(labels, dtype="int32"), averaged=False)
    assert onp.isfinite(loss.asnumpy()).all() and loss[0].item() > 87


def test_clipping_bounds_the_global_norm():
    model = gru_lm()
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=0.5)
    trainer.device, trainer.params = d2l.cpu(), list(model.collect_params().values())
    X = np.array(onp.random.default_rng(0).integers(0, 28, (8, 10)), dtype="int32")
    with mx.autograd.record():
        loss = model.loss(model(X), X) * 100
    loss.backward()
    trainer.clip_gradients(0.5, model)
    norm = onp.sqrt(sum(float((p.grad() ** 2).sum()) for p in trainer.params))
    assert norm == pytest.approx(0.5, rel=1e-4)


# ---- generation, devices, bad input --------------------------------------------------------
def test_predict_length_and_unknown_characters():
    data = small_data(num_train=256, num_val=256)
    for model in (scratch_lm(), gru_lm()):
        out = model.predict("it has", 20, data.vocab)
        assert isinstance(out, str) and len(out) == 26 and out.startswith("it has")
        assert model.predict("i#", 3, data.vocab).startswith("i<unk>")  # '#' is out of vocab
        assert len(model.predict("it", 5, data.vocab, d2l.cpu())) == 7
        with pytest.raises(ValueError, match="device"):
            model.predict("it", 5, data.vocab, device="cuda")


def test_devices(capsys):
    assert d2l.cpu() == mx.cpu() and d2l.try_gpu() == mx.cpu()
    with pytest.raises(ValueError, match="5"):
        d2l.gpu(5)
    if d2l.num_gpus() > 0:
        pytest.skip("a GPU is present: no fallback to test")
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
    assert trainer.device == mx.cpu()
    trainer.fit(gru_lm(), small_data(num_train=256, num_val=256))
    first = capsys.readouterr().out.splitlines()[0]
    assert "cpu" in first and "num_gpus=1" in first


@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: d2l.RNNScratch(0, 32), "num_inputs"),
        (lambda: d2l.RNNScratch(28, 0), "num_hiddens"),
        (lambda: d2l.StackedRNNScratch(28, 32, 0), "num_layers"),
        (lambda: d2l.StackedRNNScratch(28, -1, 2), "num_hiddens"),
        (lambda: d2l.RNNLMScratch(d2l.RNNScratch(28, 32), 0), "vocab_size"),
        (lambda: d2l.RNNLMScratch(d2l.RNNScratch(28, 32), 28, lr=0), "lr"),
        (lambda: d2l.RNNLM(d2l.GRU(32, 2), 28, lr=-1), "lr"),
        (lambda: d2l.RNN(0), "num_hiddens"),
        (lambda: d2l.GRU(0, 2), "num_hiddens"),
        (lambda: d2l.GRU(32, 0), "num_layers"),
        (lambda: d2l.GRU(32, 2, dropout=1.5), "dropout"),
        (lambda: small_data(batch_size=0), "batch_size"),
        (lambda: small_data(num_steps=0), "num_steps"),
        (lambda: small_data(num_steps=10**7), "num_steps"),
        (lambda: d2l.Trainer(max_epochs=1, num_gpus=-1), "num_gpus"),
    ],
)
def test_bad_input_names_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_token_tensors_are_int32():
    X, Y = next(iter(small_data(num_train=256, num_val=256).train_dataloader()))
    assert X.dtype == onp.int32 and X.shape == (256, 16) and isinstance(X, np.ndarray)
    close(X[:, 1:].asnumpy(), Y[:, :-1].asnumpy())  # targets shifted by one


# ---- d2l 1.0.3 -----------------------------------------------------------------------------
@pytest.fixture
def d2l_ref(monkeypatch):
    ref = pytest.importorskip("d2l.mxnet")
    text = Path(os.environ["D2L_DATA_DIR"], "timemachine.txt").read_text()
    monkeypatch.setattr(ref.TimeMachine, "_download", lambda self: text)
    return ref


@pytest.mark.reference
def test_data_pipeline_equals_d2l(d2l_ref):
    ours, theirs = small_data(), d2l_ref.TimeMachine(256, 16, num_train=2048, num_val=512)
    assert ours.vocab.idx_to_token == theirs.vocab.idx_to_token
    close(ours.X, theirs.X.asnumpy())
    close(ours.Y, theirs.Y.asnumpy())
    (X, Y), (X_ref, Y_ref) = (next(iter(m.val_dataloader())) for m in (ours, theirs))
    close(X.asnumpy(), X_ref.asnumpy())  # validation is not shuffled: same first batch
    close(Y.asnumpy(), Y_ref.asnumpy())


@pytest.mark.reference
def test_gru_language_model_equals_d2l(d2l_ref, rng):
    theirs = d2l_ref.RNNLM(d2l_ref.GRU(H, 2), V)
    X = np.array(rng.integers(0, V, size=(B, T)), dtype="int32")
    expected = theirs(X).asnumpy()  # creates d2l's lazy weights
    ours = gru_lm(V, H, 2)
    for mine, ref in ((ours.rnn.rnn, theirs.rnn.rnn), (ours.linear, theirs.linear)):
        for name, param in ref._reg_params.items():
            getattr(mine, name).set_data(param.data())
    close(ours(X).asnumpy(), expected)
    outputs, state = ours.rnn(ours.one_hot(X))
    ref_outputs, ref_state = theirs.rnn(theirs.one_hot(X))
    close(outputs.asnumpy(), ref_outputs.asnumpy())
    close(state[0].asnumpy(), ref_state.asnumpy())


def d2l_stacked_scratch_lm(ref, vocab_size, h, layers):
    """d2l 1.0.3's scratch language model over the benchmark's reference stacked layers (every
    layer an attribute: d2l collects the weights of attributes only)."""
    namespace = {"d2l": ref, "np": np}
    exec(D2L_STACKED["mxnet"], namespace)
    stacked = namespace["StackedRNNScratch"](vocab_size, h, layers)
    return ref.RNNLMScratch(stacked, vocab_size, lr=2)


@pytest.mark.reference
def test_scratch_training_steps_equal_d2l(d2l_ref, capsys):
    """Same weights, same batches: our hybridized layers, loss, clipping and SGD step give
    d2l's losses and weights (clipping active: a bound below the gradients' norm)."""
    d2l.set_seed(0)
    data = small_data(num_train=1024)
    theirs = d2l_stacked_scratch_lm(d2l_ref, 28, 32, 2)
    theirs.plot = lambda *args, **kwargs: None  # no board: d2l's needs its trainer's counters
    ref_trainer = d2l_ref.Trainer(max_epochs=1, gradient_clip_val=0.05)
    ours = scratch_lm()
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=0.05)
    trainer.fit(ours, data)  # hybridizes; the weights are replaced below
    ref_params = [theirs.W_hq, theirs.b_q] + [
        getattr(getattr(theirs.rnn, f"rnn{i}"), name)
        for i in range(2)
        for name in ("W_xh", "W_hh", "b_h")
    ]
    for mine, ref in zip(trainer.params, ref_params, strict=True):
        mine.set_data(ref.copy())
    optim = theirs.configure_optimizers()
    for batch in data.train_dataloader():
        with mx.autograd.record():
            ref_loss = theirs.training_step(batch)
        ref_loss.backward()
        ref_trainer.clip_gradients(0.05, theirs)
        optim.step(1)
        loss = trainer.train_step(trainer.prepare_batch(batch))
        assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    for mine, ref in zip(trainer.params, ref_params, strict=True):
        onp.testing.assert_allclose(mine.data().asnumpy(), ref.asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.reference
def test_gru_training_steps_equal_d2l(d2l_ref):
    """As above for the concise GRU: same weights and batches give d2l's losses and weights."""
    d2l.set_seed(0)
    data = small_data(num_train=1024)
    clip = 0.05
    ours = gru_lm()
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=clip)
    trainer.fit(ours, data)  # hybridizes; the weights are replaced below
    batches = list(data.train_dataloader())
    theirs = d2l_ref.RNNLM(d2l_ref.GRU(32, 2), 28, lr=2)
    theirs(batches[0][0])  # creates d2l's lazy weights
    theirs.plot = lambda *args, **kwargs: None
    layers = ((ours.rnn.rnn, theirs.rnn.rnn), (ours.linear, theirs.linear))
    for mine, ref in layers:
        for name, param in ref._reg_params.items():
            getattr(mine, name).set_data(param.data().copy())
    ref_trainer, optim, norms = d2l_ref.Trainer(max_epochs=1), theirs.configure_optimizers(), []
    for batch in batches:
        with mx.autograd.record():
            ref_loss = theirs.training_step(batch)
        ref_loss.backward()
        grads = [p.grad() for p in theirs.collect_params().values()]
        norms.append(float(sum((g * g).sum() for g in grads)) ** 0.5)
        ref_trainer.clip_gradients(clip, theirs)
        optim.step(1)
        loss = trainer.train_step(trainer.prepare_batch(batch))
        assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    assert min(norms) > clip  # clipping was active at every step
    for mine, ref in layers:
        for name, param in ref._reg_params.items():
            onp.testing.assert_allclose(
                getattr(mine, name).data().asnumpy(), param.data().asnumpy(), rtol=1e-4, atol=1e-5
            )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
