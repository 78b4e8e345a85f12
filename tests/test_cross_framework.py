"""The three frameworks against each other: same reference weights, same logits, same text.

The weight copies reuse the helpers of the per-framework model tests.
"""

from itertools import combinations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
mx = pytest.importorskip("mxnet")

import reference_rnn as ref  # noqa: E402
from test_mxnet_models import set_gluon_rnn  # noqa: E402
from test_mxnet_models import set_scratch as mx_set_scratch  # noqa: E402
from test_tensorflow_models import keras_gru_weights  # noqa: E402
from test_tensorflow_models import set_scratch as tf_set_scratch  # noqa: E402
from test_torch_models import load_concise, load_scratch, t  # noqa: E402

from d2l_shim import mxnet as d2l_mx  # noqa: E402
from d2l_shim import tensorflow as d2l_tf  # noqa: E402
from d2l_shim import torch as d2l_torch  # noqa: E402
from d2l_shim._common import TIME_MACHINE, build_corpus, fetch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow, pytest.mark.mxnet]

V, H, L, B, T = 28, 32, 2, 4, 5  # vocab_size, num_hiddens, num_layers, batch_size, num_steps


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(1)  # seed 0: the greedy GRU repeats one token, a weak check
    return {
        "rnn": ref.random_rnn_layers(rng, V, H, L),
        "gru": ref.random_gru_layers(rng, V, H, L),
        "W_hq": rng.normal(0, 0.3, (H, V)).astype(np.float32),
        "b_q": rng.normal(0, 0.3, (V,)).astype(np.float32),
        "X": rng.integers(0, V, (B, T)),  # (batch_size, num_steps) token indices
    }


def torch_models(w):
    scratch = d2l_torch.RNNLMScratch(d2l_torch.StackedRNNScratch(V, H, L), V)
    for layer, p in zip(scratch.rnn.rnns, w["rnn"], strict=True):
        load_scratch(layer, p)
    gru = d2l_torch.RNNLM(d2l_torch.GRU(V, H, L), V)
    load_concise(gru.rnn.rnn, w["gru"], "gru")
    with torch.no_grad():
        scratch.W_hq.copy_(t(w["W_hq"]))
        scratch.b_q.copy_(t(w["b_q"]))
        gru.linear.weight.copy_(t(w["W_hq"].T))  # nn.Linear: (out, in)
        gru.linear.bias.copy_(t(w["b_q"]))
    return {"scratch": scratch, "gru": gru}, lambda m, X: m(torch.tensor(X)).detach().numpy()


def tensorflow_models(w):
    scratch = d2l_tf.RNNLMScratch(d2l_tf.StackedRNNScratch(V, H, L), V)
    for layer, p in zip(scratch.rnn.rnns, w["rnn"], strict=True):
        tf_set_scratch(layer, p)
    scratch.W_hq.assign(w["W_hq"])
    scratch.b_q.assign(w["b_q"])
    gru = d2l_tf.RNNLM(d2l_tf.GRU(H, L), V)
    gru(tf.constant(w["X"]))  # build the lazy Keras weights
    for cell, p in zip(gru.rnn.rnn.cell.cells, w["gru"], strict=True):
        cell.set_weights(keras_gru_weights(p))
    gru.linear.set_weights([w["W_hq"], w["b_q"]])  # Dense: (in, out)
    return {"scratch": scratch, "gru": gru}, lambda m, X: m(tf.constant(X)).numpy()


def mxnet_models(w):
    scratch = d2l_mx.RNNLMScratch(d2l_mx.StackedRNNScratch(V, H, L), V)
    for layer, p in zip(scratch.rnn.rnns, w["rnn"], strict=True):
        mx_set_scratch(layer, p)
    scratch.W_hq.set_data(mx.np.array(w["W_hq"]))
    scratch.b_q.set_data(mx.np.array(w["b_q"]))
    gru = d2l_mx.RNNLM(d2l_mx.GRU(H, L), V)
    set_gluon_rnn(gru.rnn.rnn, w["gru"], "rzn")
    gru.linear.weight.set_data(mx.np.array(w["W_hq"].T))  # Dense: (out, in)
    gru.linear.bias.set_data(mx.np.array(w["b_q"]))
    return {"scratch": scratch, "gru": gru}, lambda m, X: m(mx.np.array(X, dtype="int32")).asnumpy()


@pytest.fixture(scope="module")
def frameworks(weights):
    """framework -> (models by kind, forward: (model, NumPy tokens) -> NumPy logits)."""
    builders = {"torch": torch_models, "tensorflow": tensorflow_models, "mxnet": mxnet_models}
    return {name: build(weights) for name, build in builders.items()}


@pytest.fixture(scope="module")
def vocab():
    return build_corpus(fetch(TIME_MACHINE).read_text(encoding="utf-8"))[1]


@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_logits_agree(frameworks, weights, kind):
    logits = {name: fwd(models[kind], weights["X"]) for name, (models, fwd) in frameworks.items()}
    for name, Y in logits.items():
        assert Y.shape == (B, T, V), name
    for a, b in combinations(logits, 2):
        np.testing.assert_allclose(logits[a], logits[b], rtol=0, atol=1e-5, err_msg=f"{a}/{b}")


@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_greedy_predictions_agree(frameworks, vocab, kind):
    assert len(vocab) == V
    texts = {
        name: models[kind].predict("it has", 10, vocab) for name, (models, _) in frameworks.items()
    }
    assert len(set(texts.values())) == 1, texts
    text = texts["torch"]
    assert text.startswith("it has") and len(set(text[6:])) > 2  # not one repeated token
