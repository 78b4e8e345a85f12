"""TensorFlow models of the shim against the NumPy reference, d2l 1.0.3 and a short training."""

import os
import sys
import types

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

import reference_rnn as ref  # noqa: E402

from benchmarks.workloads import D2L_STACKED  # noqa: E402
from d2l_shim import tensorflow as d2l  # noqa: E402
from d2l_shim._common import TIME_MACHINE, fetch  # noqa: E402

V, H, STEPS, BATCH = 28, 32, 5, 4  # vocab_size, num_hiddens, num_steps, batch_size
ATOL = 1e-5


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def small_data():
    """Sizes multiple of the batch size: one batch shape, so one trace per step function."""
    return d2l.TimeMachine(batch_size=256, num_steps=16, num_train=2048, num_val=512)


def inputs(rng, num_inputs=V):
    return rng.normal(0, 1, (STEPS, BATCH, num_inputs)).astype(np.float32)


def tokens(rng):
    return rng.integers(0, V, (BATCH, STEPS))  # (batch_size, num_steps)


# ---- weights from the reference into Keras' layouts -----------------------------------------
def set_scratch(layer, p):
    layer.W_xh.assign(p["W_xh"])
    layer.W_hh.assign(p["W_hh"])
    layer.b_h.assign(p["b_h"])


def keras_gru_weights(p):
    """Keras GRUCell (reset_after): kernels (d, 3h) and (h, 3h) in gate order (z, r, n)."""
    kernel = np.concatenate([p["W_xz"], p["W_xr"], p["W_xn"]], axis=1)
    recurrent = np.concatenate([p["W_hz"], p["W_hr"], p["W_hn"]], axis=1)
    bias = np.stack(
        [
            np.concatenate([p[f"b_x{g}"] for g in "zrn"]),
            np.concatenate([p[f"b_h{g}"] for g in "zrn"]),
        ]
    )  # (2, 3h): input biases, then recurrent biases
    return [kernel, recurrent, bias]


def make_gru(rng, num_layers, num_inputs=V):
    layers = ref.random_gru_layers(rng, num_inputs, H, num_layers)
    gru = d2l.GRU(H, num_layers)
    gru(tf.zeros((1, 1, num_inputs)))  # build the cells
    for cell, p in zip(gru.rnn.cell.cells, layers, strict=True):
        cell.set_weights(keras_gru_weights(p))
    return gru, layers


# ---- public names and devices ----------------------------------------------------------------
def test_exports_the_contract_names():
    from test_api import REQUIRED  # the contract, kept in one place

    assert set(d2l.__all__) == REQUIRED
    assert all(hasattr(d2l, name) for name in d2l.__all__)


def test_devices():
    assert d2l.cpu() == "/CPU:0"
    with d2l.cpu():  # usable as tf.device, as in d2l
        assert "CPU" in tf.ones(1).device
    assert d2l.num_gpus() == len(tf.config.list_physical_devices("GPU"))
    assert d2l.try_gpu() == (d2l.gpu() if d2l.num_gpus() else d2l.cpu())
    assert d2l.try_gpu(5) == d2l.cpu()
    with pytest.raises(ValueError, match=r"gpu\(5\)"):
        d2l.gpu(5)


# ---- forward passes against the NumPy reference ----------------------------------------------
def test_rnn_scratch_matches_reference(rng):
    (p,) = ref.random_rnn_layers(rng, V, H, 1)
    rnn = d2l.RNNScratch(V, H)
    set_scratch(rnn, p)
    X, H0 = inputs(rng), rng.normal(0, 1, (BATCH, H)).astype(np.float32)
    for state, H_init in [(None, np.zeros((BATCH, H), np.float32)), (H0, H0), ((H0,), H0)]:
        outputs, H_T = rnn(tf.constant(X), state)
        want, want_H = ref.rnn_layer(X, H_init, p)
        d2l.check_len(outputs, STEPS)
        np.testing.assert_allclose(np.stack(outputs), want, atol=ATOL)
        np.testing.assert_allclose(H_T, want_H, atol=ATOL)


def test_stacked_rnn_scratch_matches_reference(rng):
    layers = ref.random_rnn_layers(rng, V, H, 2)
    stacked = d2l.StackedRNNScratch(V, H, 2)
    for layer, p in zip(stacked.rnns, layers, strict=True):
        set_scratch(layer, p)
    X = inputs(rng)
    states = [rng.normal(0, 1, (BATCH, H)).astype(np.float32) for _ in layers]
    for Hs in (None, states):
        outputs, H_T = stacked(tf.constant(X), None if Hs is None else list(Hs))
        want, want_H = ref.stacked(ref.rnn_layer, X, layers, Hs)
        d2l.check_shape(outputs, (STEPS, BATCH, H))
        np.testing.assert_allclose(outputs, want, atol=ATOL)
        for got, expected in zip(H_T, want_H, strict=True):
            np.testing.assert_allclose(got, expected, atol=ATOL)


def test_concise_rnn_matches_reference(rng):
    (p,) = ref.random_rnn_layers(rng, V, H, 1)
    rnn = d2l.RNN(H)
    rnn(tf.zeros((1, 1, V)))
    rnn.rnn.cell.set_weights([p["W_xh"], p["W_hh"], p["b_h"]])
    X = inputs(rng)
    outputs, H_T = rnn(tf.constant(X))
    want, want_H = ref.rnn_layer(X, np.zeros((BATCH, H), np.float32), p)
    np.testing.assert_allclose(outputs, want, atol=ATOL)
    np.testing.assert_allclose(H_T, want_H, atol=ATOL)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gru_matches_reference(rng, num_layers):
    gru, layers = make_gru(rng, num_layers)
    X = inputs(rng)
    states = [rng.normal(0, 1, (BATCH, H)).astype(np.float32) for _ in layers]
    for Hs in (None, states):
        outputs, H_T = gru(tf.constant(X), None if Hs is None else [tf.constant(h) for h in Hs])
        want, want_H = ref.stacked(ref.gru_layer, X, layers, Hs)
        d2l.check_shape(outputs, (STEPS, BATCH, H))
        d2l.check_len(H_T, num_layers)
        np.testing.assert_allclose(outputs, want, atol=ATOL)
        for got, expected in zip(H_T, want_H, strict=True):
            np.testing.assert_allclose(got, expected, atol=ATOL)


def test_language_models_match_reference(rng):
    X = tokens(rng)
    one_hot = np.eye(V, dtype=np.float32)[X.T]  # (num_steps, batch_size, vocab_size)
    W_hq = rng.normal(0, 0.5, (H, V)).astype(np.float32)
    b_q = rng.normal(0, 0.5, (V,)).astype(np.float32)
    # scratch: stacked RNN + W_hq, b_q
    layers = ref.random_rnn_layers(rng, V, H, 2)
    model = d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V)
    for layer, p in zip(model.rnn.rnns, layers, strict=True):
        set_scratch(layer, p)
    model.W_hq.assign(W_hq)
    model.b_q.assign(b_q)
    want = ref.output_layer(ref.stacked(ref.rnn_layer, one_hot, layers)[0], W_hq, b_q)
    np.testing.assert_allclose(model(tf.constant(X)), want, atol=ATOL)
    # concise: 2-layer GRU + Dense
    gru, layers = make_gru(rng, 2)
    model = d2l.RNNLM(gru, V)
    model(tf.constant(X))
    model.linear.set_weights([W_hq, b_q])
    want = ref.output_layer(ref.stacked(ref.gru_layer, one_hot, layers)[0], W_hq, b_q)
    np.testing.assert_allclose(model(tf.constant(X)), want, atol=ATOL)


# ---- parameters ------------------------------------------------------------------------------
def num_params(model):
    return sum(int(tf.size(v)) for v in model.trainable_variables)


def test_parameter_counts():
    scratch = d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V)
    gru = d2l.RNNLM(d2l.GRU(H, 2), V)
    for model in (scratch, gru):  # the Keras layers create their weights on the first call
        d2l.check_shape(model(tf.zeros((1, 8), tf.int32)), (1, 8, V))
    assert num_params(scratch) == 4956
    assert num_params(gru) == 13212


def models():
    return {
        "stacked scratch": lambda: d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V, lr=1),
        "scratch": lambda: d2l.RNNLMScratch(d2l.RNNScratch(V, H), V, lr=1),
        "gru": lambda: d2l.RNNLM(d2l.GRU(H, 2), V, lr=1),
        "rnn": lambda: d2l.RNNLM(d2l.RNN(H), V, lr=1),
    }


@pytest.mark.parametrize("name", list(models()))
def test_one_step_changes_every_parameter(name):
    data = d2l.TimeMachine(batch_size=64, num_steps=8, num_train=64, num_val=64)
    d2l.set_seed(0)
    model = models()[name]()
    model(tf.zeros((1, 8), tf.int32))  # create the lazy weights
    before = [v.numpy().copy() for v in model.trainable_variables]
    d2l.Trainer(max_epochs=1, gradient_clip_val=1).fit(model, data)  # one training batch
    after = [v.numpy() for v in model.trainable_variables]
    assert len(after) == len(before) > 0
    for v, b, a in zip(model.trainable_variables, before, after, strict=True):
        assert not np.array_equal(a, b), f"{name}: {v.name} did not change"


# ---- training --------------------------------------------------------------------------------
def fit(data, epochs, seed=0, **trainer_args):
    d2l.set_seed(seed)
    model = d2l.RNNLM(d2l.GRU(H, 2), len(data.vocab), lr=2)
    trainer = d2l.Trainer(max_epochs=epochs, gradient_clip_val=1, **trainer_args)
    trainer.fit(model, data)
    return model, trainer


def test_short_training_lowers_perplexity_reproducibly(small_data, monkeypatch):
    monkeypatch.setenv("D2L_MAX_EPOCHS", "3")
    model, trainer = fit(small_data, epochs=100)
    assert trainer.max_epochs == len(trainer.epoch_times) == 3  # capped
    val = [ppl for _, ppl in trainer.history["val_ppl"]]
    assert len(val) == 3 and val[-1] < val[0] < V
    _, again = fit(small_data, epochs=3)
    assert again.history == trainer.history  # same seed, same losses
    text = model.predict("it has", 20, small_data.vocab)
    assert isinstance(text, str) and len(text) == 6 + 20 and text.startswith("it has")


def test_steps_trace_once_per_batch_shape(capsys):
    """The deterministic proxy for "memory stays flat": no retracing across epochs or fits."""
    data = d2l.TimeMachine(batch_size=64, num_steps=8, num_train=200, num_val=100)  # 2 shapes
    model, trainer = fit(data, epochs=4, num_gpus=1)
    train_fn = trainer.train_fn
    assert train_fn.experimental_get_tracing_count() == 2
    assert trainer.val_fn.experimental_get_tracing_count() == 2
    out = capsys.readouterr().out
    if d2l.num_gpus() == 0:  # falls back to the CPU and says so, once
        assert trainer.device == "/CPU:0"
        assert out.count("Entraînement sur cpu (num_gpus=1 demandé") == 1
    assert model.training is None  # restored after tracing
    # the next fit of the same model (another trainer, same settings): no new trace, and
    # the optimizer restarts from zero as a new one would
    again = d2l.Trainer(max_epochs=2, gradient_clip_val=1, num_gpus=1)
    again.fit(model, data)
    assert again.train_fn is train_fn and train_fn.experimental_get_tracing_count() == 2
    assert int(again.optim.iterations) == 2 * 4  # 4 batches per epoch, counted from zero
    other = d2l.Trainer(max_epochs=1, gradient_clip_val=0.5)  # other settings: compiled anew
    other.fit(model, data)
    assert other.train_fn is not train_fn
    assert other.train_fn.experimental_get_tracing_count() == 2


def test_dropout_only_in_training():
    d2l.set_seed(0)
    gru = d2l.GRU(H, 2, dropout=0.5)
    X = tf.ones((STEPS, BATCH, V))
    infer = gru(X)[0]
    np.testing.assert_array_equal(infer, gru(X)[0])
    assert not np.allclose(gru(X, training=True)[0], infer)
    gru.training = True  # what the trainer sets while tracing its training step
    assert not np.allclose(gru(X)[0], infer)


def test_nan_loss_stops_training(small_data):
    d2l.set_seed(0)
    model = d2l.RNNLM(d2l.GRU(H, 2), V, lr=1)
    model.loss = lambda Y_hat, Y: tf.reduce_mean(Y_hat) * np.nan
    with pytest.raises(FloatingPointError, match=r"lr=1.*gradient_clip_val"):
        d2l.Trainer(max_epochs=2).fit(model, small_data)


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: d2l.RNNScratch(0, H), "num_inputs"),
        (lambda: d2l.RNNScratch(V, 0), "num_hiddens"),
        (lambda: d2l.StackedRNNScratch(V, H, 0), "num_layers"),
        (lambda: d2l.RNN(-1), "num_hiddens"),
        (lambda: d2l.GRU(0, 2), "num_hiddens"),
        (lambda: d2l.GRU(H, 0), "num_layers"),
        (lambda: d2l.GRU(H, 2, dropout=1.5), "dropout"),
        (lambda: d2l.RNNLMScratch(d2l.RNNScratch(V, H), 0), "vocab_size"),
        (lambda: d2l.RNNLMScratch(d2l.RNNScratch(V, H), V, lr=0), "lr"),
        (lambda: d2l.RNNLM(d2l.GRU(H, 1), V, lr=-1), "lr"),
        (lambda: d2l.TimeMachine(batch_size=0, num_steps=8), "batch_size"),
        (lambda: d2l.TimeMachine(batch_size=8, num_steps=0), "num_steps"),
        (lambda: d2l.TimeMachine(batch_size=8, num_steps=10**7), "num_steps"),
        (lambda: d2l.Trainer(max_epochs=0), "max_epochs"),
        (lambda: d2l.Trainer(max_epochs=1, num_gpus=-1), "num_gpus"),
        (lambda: d2l.gpu(5), "gpu"),
    ],
)
def test_bad_input_names_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_predict_devices_and_unknown_characters(small_data):
    d2l.set_seed(0)
    model = d2l.RNNLMScratch(d2l.RNNScratch(V, H), V)
    vocab = small_data.vocab
    for device in (None, d2l.cpu(), "/CPU:0", d2l.try_gpu()):
        assert len(model.predict("time", 5, vocab, device)) == 9
    for device in ("cuda", "/GPU:7", "tpu:0", 3):
        with pytest.raises(ValueError, match="device"):
            model.predict("time", 5, vocab, device)
    text = model.predict("é!", 3, vocab)  # unknown characters map to <unk>
    assert text.startswith("<unk><unk>")
    assert len(text[10:].replace("<unk>", "?")) == 3  # three predicted tokens


# ---- against d2l 1.0.3 -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def d2l_tf():
    pytest.importorskip("d2l")
    if "torchvision" not in sys.modules:  # d2l.torch needs it; harmless for d2l.tensorflow
        sys.modules["torchvision"] = types.ModuleType("torchvision")
        sys.modules["torchvision.transforms"] = types.ModuleType("torchvision.transforms")
    from d2l import tensorflow as reference

    return reference


@pytest.mark.reference
def test_gru_language_model_matches_d2l(rng, d2l_tf):
    X = tf.constant(tokens(rng), tf.int32)
    ours = d2l.RNNLM(d2l.GRU(H, 2), V)
    theirs = d2l_tf.RNNLM(d2l_tf.GRU(H, 2), vocab_size=V)  # time_major=True inside
    ours(X), theirs(X)
    assert len(ours.trainable_variables) == len(theirs.trainable_variables)
    for mine, other in zip(ours.trainable_variables, theirs.trainable_variables, strict=True):
        other.assign(mine)
    np.testing.assert_allclose(ours(X), theirs(X), atol=ATOL)
    emb = ours.one_hot(X)
    for mine, other in zip(ours.rnn(emb)[1], theirs.rnn(emb)[1], strict=True):
        np.testing.assert_allclose(mine, other, atol=ATOL)


@pytest.mark.reference
def test_scratch_language_model_matches_d2l(rng, small_data, d2l_tf):
    X = tf.constant(tokens(rng), tf.int32)
    ours = d2l.RNNLMScratch(d2l.RNNScratch(V, H, sigma=0.5), V)
    theirs = d2l_tf.RNNLMScratch(d2l_tf.RNNScratch(V, H), vocab_size=V)
    for name in ("W_xh", "W_hh", "b_h"):
        getattr(theirs.rnn, name).assign(getattr(ours.rnn, name))
    theirs.W_hq.assign(ours.W_hq)
    theirs.b_q.assign(ours.b_q)
    np.testing.assert_allclose(ours(X), theirs(X), atol=ATOL)
    vocab = small_data.vocab
    assert ours.predict("time traveller", 10, vocab) == theirs.predict("time traveller", 10, vocab)


def section_models(kind, d2l_tf, vocab_size):
    """Ours and d2l's section model, and a function pairing their variables."""
    if kind == "gru":
        ours = d2l.RNNLM(d2l.GRU(H, 2), vocab_size, lr=2)
        theirs = d2l_tf.RNNLM(d2l_tf.GRU(H, 2), vocab_size=vocab_size, lr=2)
        return (
            ours,
            theirs,
            lambda: zip(ours.trainable_variables, theirs.trainable_variables, strict=True),
        )  # read when called: d2l's weights are created by its first call
    namespace = {"d2l": d2l_tf, "tf": tf}
    exec(D2L_STACKED["tensorflow"], namespace)  # d2l 1.0.3 has no StackedRNNScratch
    ours = d2l.RNNLMScratch(d2l.StackedRNNScratch(vocab_size, H, 2), vocab_size, lr=2)
    theirs = d2l_tf.RNNLMScratch(namespace["StackedRNNScratch"](vocab_size, H, 2), vocab_size, 2)

    def pairs():
        layers = zip(ours.rnn.rnns, theirs.rnn.rnns, strict=True)
        by_layer = [
            (getattr(a, n), getattr(b, n)) for a, b in layers for n in ("W_xh", "W_hh", "b_h")
        ]
        return [(ours.W_hq, theirs.W_hq), (ours.b_q, theirs.b_q)] + by_layer

    return ours, theirs, pairs


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_training_steps_equal_d2l(kind, small_data, d2l_tf):
    """Same weights, same batches: our compiled step (loss, clipping, SGD) gives d2l's losses
    and weights, the section's models at lr 2 with a clipping bound the gradients exceed."""
    clip = 0.05
    ours, theirs, pairs = section_models(kind, d2l_tf, len(small_data.vocab))
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=clip)
    trainer.fit(ours, small_data)  # compiles the steps; the weights are replaced below
    batches = list(small_data.train_dataloader())
    theirs(batches[0][0])  # creates d2l's lazy weights
    for mine, other in pairs():
        mine.assign(other)
    theirs.plot = lambda *args, **kwargs: None  # d2l's board needs its own trainer's counters
    ref_trainer, optim, norms = d2l_tf.Trainer(max_epochs=1), theirs.configure_optimizers(), []
    for batch in batches:
        with tf.GradientTape() as tape:
            ref_loss = theirs.training_step(batch)
        grads = tape.gradient(ref_loss, theirs.trainable_variables)
        norms.append(float(tf.linalg.global_norm(grads)))
        optim.apply_gradients(
            zip(ref_trainer.clip_gradients(clip, grads), theirs.trainable_variables, strict=True)
        )
        loss = trainer.train_step(batch)
        assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    assert min(norms) > clip  # clipping was active at every step
    for mine, other in pairs():
        np.testing.assert_allclose(mine.numpy(), other.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.reference
def test_data_pipeline_matches_d2l(d2l_tf):
    class TheirTimeMachine(d2l_tf.TimeMachine):
        def _download(self):
            return fetch(TIME_MACHINE).read_text(encoding="utf-8")  # the same verified file

    ours = d2l.TimeMachine(batch_size=64, num_steps=8)
    theirs = TheirTimeMachine(batch_size=64, num_steps=8)
    assert ours.vocab.idx_to_token == theirs.vocab.idx_to_token
    np.testing.assert_array_equal(ours.X, theirs.X.numpy())
    np.testing.assert_array_equal(ours.Y, theirs.Y.numpy())
    X, Y = next(iter(ours.val_dataloader()))
    assert X.dtype == Y.dtype == tf.int64 and tuple(X.shape) == (64, 8)
    np.testing.assert_array_equal(X, theirs.X[10000 : 10000 + 64])  # validation: not shuffled
