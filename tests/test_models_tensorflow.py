"""What only the TensorFlow shim does: compiled steps reused across fits, Keras' ``training``
flag, and the Keras 3 differences it absorbs (each test here fails when its fix is undone)."""

import logging
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
tf = pytest.importorskip("tensorflow")

from d2l_shim import tensorflow as d2l  # noqa: E402

V, H = 28, 32


def gru_lm(lr=2):
    return d2l.RNNLM(d2l.GRU(H, 2), V, lr=lr)


def fit(model, data, epochs, **trainer_args):
    trainer = d2l.Trainer(max_epochs=epochs, **trainer_args)
    trainer.fit(model, data)
    return trainer


def test_steps_trace_once_per_batch_shape_and_are_reused_by_the_next_fit():
    """The deterministic proxy for "memory stays flat": no retracing across epochs or fits."""
    data = d2l.TimeMachine(batch_size=64, num_steps=8, num_train=200, num_val=100)  # 2 shapes
    d2l.set_seed(0)
    model = gru_lm()
    trainer = fit(model, data, epochs=4, gradient_clip_val=1)
    train_fn = trainer.train_fn
    assert train_fn.experimental_get_tracing_count() == 2
    assert trainer.val_fn.experimental_get_tracing_count() == 2
    assert model.training is None  # restored after tracing
    # the next fit of the same model (another trainer and optimizer, same settings; Keras 3
    # names the new optimizer sgd_1): no new trace, the optimizer restarts from zero
    again = fit(model, data, epochs=2, gradient_clip_val=1)
    assert again.train_fn is train_fn and train_fn.experimental_get_tracing_count() == 2
    assert int(again.optim.iterations.numpy()) == 2 * 4  # 4 batches per epoch, from zero
    other = fit(model, data, epochs=1, gradient_clip_val=0.5)  # other settings: compiled anew
    assert other.train_fn is not train_fn
    assert other.train_fn.experimental_get_tracing_count() == 2


def test_dropout_only_in_training():
    d2l.set_seed(0)
    gru = d2l.GRU(H, 2, dropout=0.5)
    X = tf.ones((5, 4, V))
    infer = gru(X)[0]
    np.testing.assert_array_equal(infer, gru(X)[0])
    assert not np.allclose(gru(X, training=True)[0], infer)
    gru.training = True  # what the trainer sets while tracing its training step
    assert not np.allclose(gru(X)[0], infer)


def lean_and_keras_cells(num_inputs=V, dropout=0.0):
    """Our LeanGRUCell and Keras' GRUCell with the same random weights (biases too)."""
    lean = d2l.LeanGRUCell(H, dropout=dropout)
    keras = tf.keras.layers.GRUCell(H, dropout=dropout)
    for cell in (lean, keras):
        cell.build((None, num_inputs))
    rng = np.random.default_rng(0)
    for w_lean, w_keras in zip(lean.weights, keras.weights, strict=True):
        value = rng.normal(0, 0.5, w_keras.shape).astype("float32")
        w_lean.assign(value)
        w_keras.assign(value)
    return lean, keras


def test_lean_gru_cell_computes_keras_gru_cell_step_and_gradients():
    lean, keras = lean_and_keras_cells()
    rng = np.random.default_rng(1)
    X = tf.constant(rng.normal(size=(4, V)), tf.float32)
    H0 = tf.constant(rng.normal(size=(4, H)), tf.float32)
    results = []
    for cell in (lean, keras):
        with tf.GradientTape() as tape:
            tape.watch(H0)
            out, state = cell(X, [H0])
            loss = tf.reduce_sum(out**2)
        results.append((out, tf.nest.flatten(state), tape.gradient(loss, [H0, *cell.weights])))
    (out, state, grads), (k_out, k_state, k_grads) = results
    np.testing.assert_allclose(out, k_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state[0], k_state[0], rtol=1e-5, atol=1e-6)
    for g, k_g in zip(grads, k_grads, strict=True):
        np.testing.assert_allclose(g, k_g, rtol=1e-4, atol=1e-5)


def test_lean_gru_cell_with_dropout_takes_keras_step():
    X, H0 = tf.ones((3, V)), tf.zeros((3, H))
    lean, keras = lean_and_keras_cells(dropout=0.5)
    np.testing.assert_allclose(lean(X, [H0])[0], keras(X, [H0])[0], rtol=1e-5, atol=1e-6)
    lean, keras = lean_and_keras_cells(dropout=0.5)  # fresh cells: Keras 2 caches its masks
    assert not np.allclose(lean(X, [H0], training=True)[0], keras(X, [H0])[0])


def test_compiled_gru_step_has_no_per_step_slicing():
    """Keras 3's GRUCell splits the bias and slices the recurrent product at every step
    (StridedSlice, Squeeze: ~25 % more time per epoch than Keras 2); LeanGRUCell does not.
    Counted in the graph, not timed (the speed itself is in benchmarks/)."""
    gru = d2l.GRU(H, 2)
    graph = tf.function(gru).get_concrete_function(tf.zeros((8, 4, V))).graph.as_graph_def()
    body = [f for f in graph.library.function if "while_body" in f.signature.name]
    assert body, "no while loop in the compiled GRU"
    ops = {node.op for f in body for node in f.node_def}
    assert not ops & {"StridedSlice", "Squeeze"}, sorted(ops)


# ---- Keras 3 (the shared model tests catch the others: integer lr, Classifier.loss, the
# GRU's states as one-element lists) ----------------------------------------------------------
def test_models_build_and_train_without_keras_warnings():
    """Keras 3 traces ``call`` to build a model it thinks unbuilt, and warns into the cell."""
    data = d2l.TimeMachine(batch_size=64, num_steps=8, num_train=64, num_val=64)
    models = [
        d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V, lr=2),
        d2l.RNNLM(d2l.GRU(H, 2), V, lr=2),
        d2l.RNNLM(d2l.RNN(H), V, lr=2),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for model in models:
            model(tf.zeros((1, 8), tf.int32))
            fit(model, data, epochs=1, gradient_clip_val=1)
    assert not [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_only_tensors_reach_keras_positionally(monkeypatch):
    """Keras 3.0-3.3 refuse ``layer(outputs, None)``: the shim passes states by name."""
    keras_call, positional = tf.keras.Model.__call__, []

    def spy(self, *args, **kwargs):
        positional.extend(args[1:])
        return keras_call(self, *args, **kwargs)

    monkeypatch.setattr(tf.keras.Model, "__call__", spy)
    model = d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V)
    model(tf.zeros((2, 8), tf.int32), None)  # and, inside, each layer(outputs, None)
    d2l.GRU(H, 2)(tf.zeros((8, 2, V)), None)
    assert positional == []


def test_grad_norm_groups_are_compiled_in_the_step_and_part_of_its_cache_key():
    data = d2l.TimeMachine(batch_size=64, num_steps=8, num_train=128, num_val=64)  # 1 shape
    d2l.set_seed(0)
    model = gru_lm()
    plain = fit(model, data, epochs=1, gradient_clip_val=1)
    groups = {"gru": model.rnn, "sortie": model.linear.trainable_variables}
    first = fit(model, data, epochs=2, gradient_clip_val=1, grad_norm_groups=groups)
    assert first.train_fn is not plain.train_fn  # the norms are outputs of the compiled step
    assert len(first.grad_norms["gru"]) == 2 * 2 and len(first.grad_norms["sortie"]) == 4
    again = fit(model, data, epochs=1, gradient_clip_val=1, grad_norm_groups=groups)
    assert again.train_fn is first.train_fn  # reused by the next fit: no new trace
    assert first.train_fn.experimental_get_tracing_count() == 1
    assert len(again.grad_norms["gru"]) == 2
    swapped = fit(model, data, epochs=1, gradient_clip_val=1, grad_norm_groups={"g": model.rnn})
    assert swapped.train_fn is not first.train_fn  # other groups: compiled anew


def test_many_models_trained_in_a_row_log_no_retracing_warning(caplog):
    """TensorFlow counts traces per code object: without the shim's filter, the sixth model's
    steps (each compiled and traced once) trigger "triggered tf.function retracing"."""
    data = d2l.TimeMachine(batch_size=64, num_steps=8, num_train=128, num_val=64)
    with caplog.at_level(logging.WARNING):
        for _ in range(7):
            fit(d2l.RNNLMScratch(d2l.RNNScratch(V, 4), V, lr=1), data, epochs=1)
    assert "retracing" not in caplog.text


def test_a_readers_own_retracing_warning_still_shows(caplog):
    @tf.function
    def square(x):
        return x * x

    with caplog.at_level(logging.WARNING):
        for n in range(1, 8):  # a new shape each call: seven traces of one function
            square(tf.ones((n,)))
    assert "triggered tf.function retracing" in caplog.text
