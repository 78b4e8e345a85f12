"""What only the MXNet shim does: hybridized (compiled) blocks, and its own gradient clipping."""

import numpy as onp
import pytest
import reference_rnn as ref

pytestmark = pytest.mark.mxnet
mx = pytest.importorskip("mxnet")

from frameworks import MXNet  # noqa: E402

T, B, D, H = 5, 3, 7, 4  # num_steps, batch_size, num_inputs, num_hiddens


@pytest.fixture(scope="module")
def fw():
    return MXNet()


@pytest.fixture
def rng():
    return onp.random.default_rng(0)


def close(a, b):
    onp.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_hybridized_scratch_layer_matches_reference(fw, rng):
    (p,) = ref.random_rnn_layers(rng, D, H, 1)
    H0 = rng.normal(size=(B, H)).astype("float32")
    layer = fw.d2l.RNNScratch(D, H)
    fw.set_scratch(layer, p)
    layer.hybridize(static_alloc=True)
    for steps in (T, 1, T):  # the compiled graph is rebuilt when num_steps changes
        X = rng.normal(size=(steps, B, D)).astype("float32")
        want, want_H = ref.rnn_layer(X, H0, p)
        outputs, state = layer(fw.tensor(X), fw.tensor(H0))
        fw.d2l.check_len(outputs, steps)
        close(onp.stack([o.asnumpy() for o in outputs]), want)
        close(state.asnumpy(), want_H)
    assert layer._active


def test_hybridized_scratch_layer_has_the_same_gradients(fw, rng):
    (p,) = ref.random_rnn_layers(rng, D, H, 1)
    X = fw.tensor(rng.normal(size=(T, B, D)))
    grads = []
    for hybridize in (False, True):
        layer = fw.d2l.RNNScratch(D, H)
        fw.set_scratch(layer, p)
        if hybridize:
            layer.hybridize(static_alloc=True)
        with mx.autograd.record():
            outputs, state = layer(X)  # zero initial state
            loss = (mx.np.stack(outputs) ** 2).sum() + (3 * state).sum()
        loss.backward()
        grads.append({n: getattr(layer, n).grad().asnumpy() for n in ("W_xh", "W_hh", "b_h")})
    for name, grad in grads[0].items():
        assert onp.abs(grad).sum() > 0
        close(grads[1][name], grad)


@pytest.mark.parametrize(("kind", "num_layers"), [("rnn", 1), ("gru", 1), ("gru", 2)])
def test_hybridized_concise_blocks_match_reference(fw, rng, kind, num_layers):
    if kind == "rnn":
        layers, block, layer_fn = ref.random_rnn_layers(rng, D, H, 1), fw.rnn(D, H), ref.rnn_layer
    else:
        layers, layer_fn = ref.random_gru_layers(rng, D, H, num_layers), ref.gru_layer
        block = fw.gru(D, H, num_layers)
    fw.set_concise(block, layers, kind)
    block.hybridize(static_alloc=True)
    X = rng.normal(size=(T, B, D)).astype("float32")
    outputs, state = block(fw.tensor(X))
    want, want_H = ref.stacked(layer_fn, X, layers)
    close(outputs.asnumpy(), want)
    close(onp.stack(fw.final_states(state)), onp.stack(want_H))


def test_clipping_bounds_the_global_norm(fw):
    model = fw.d2l.RNNLM(fw.gru(28, 32, 2), 28, lr=2)
    trainer = fw.d2l.Trainer(max_epochs=1, gradient_clip_val=0.5)
    trainer.device, trainer.params = fw.d2l.cpu(), list(model.collect_params().values())
    X = fw.tensor(onp.random.default_rng(0).integers(0, 28, (8, 10)))
    with mx.autograd.record():
        loss = model.loss(model(X), X) * 100
    loss.backward()
    trainer.clip_gradients(0.5, model)
    norm = onp.sqrt(sum(float((p.grad() ** 2).sum()) for p in trainer.params))
    assert norm == pytest.approx(0.5, rel=1e-4)
