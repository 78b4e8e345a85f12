"""The exercises page's MXNet LSTM against its PyTorch LSTM (chapters/deep-rnn-exercises.md).

Both classes are read from the chapter's own cells. From the same weights and batches, the two
shim trainers take the same steps (lr 2, clipping at 1), so the shim is not why the two
frameworks' LSTMs learn differently. What differed was the starting point: Gluon's default
(weights uniform on [-0.07, 0.07], biases 0) kept the MXNet LSTM about 65 of its 100 epochs on
the perplexity plateau near 17, and PyTorch's nn.LSTM from those weights did the same; the
chapter's MXNet cell therefore starts from nn.LSTM's initialisation, checked here.
"""

from pathlib import Path

import numpy as onp
import pytest

mx = pytest.importorskip("mxnet")
torch = pytest.importorskip("torch")

from book.source import Code, load  # noqa: E402
from d2l_shim import mxnet as d2l_mx  # noqa: E402
from d2l_shim import torch as d2l_torch  # noqa: E402

pytestmark = [pytest.mark.mxnet, pytest.mark.torch]

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "deep-rnn-exercises.md"
V, H, L = 28, 32, 2  # vocab_size, num_hiddens, num_layers (the page's budget)
# Gluon's l{i}_* parameters and nn.LSTM's *_l{i}: both stack the gates i, f, g, o by rows
PAIRS = (
    ("i2h_weight", "weight_ih"),
    ("h2h_weight", "weight_hh"),
    ("i2h_bias", "bias_ih"),
    ("h2h_bias", "bias_hh"),
)


def chapter_lstm(framework):
    """The chapter's ``LSTM`` class for ``framework``, run after that tab's import cell."""
    cells = [
        b.code
        for b in load(CHAPTER, "chapters/deep-rnn-exercises.md").blocks
        if isinstance(b, Code) and b.frameworks == (framework,)
    ]
    imports = next(c for c in cells if c.lstrip().startswith(("import", "from")))
    (lstm,) = (c for c in cells if "class LSTM(" in c)
    namespace = {}
    exec(imports + "\n" + lstm, namespace)
    return namespace["LSTM"]


@pytest.fixture(scope="module")
def lstms():
    """(MXNet class, PyTorch class) from the chapter."""
    return chapter_lstm("mxnet"), chapter_lstm("pytorch")


def models(lstms, seed=0):
    mx_lstm, torch_lstm = lstms
    d2l_mx.set_seed(seed)
    mx_lm = d2l_mx.RNNLM(mx_lstm(H, L), vocab_size=V, lr=2)
    d2l_torch.set_seed(seed)
    torch_lm = d2l_torch.RNNLM(torch_lstm(V, H, L), vocab_size=V, lr=2)
    return mx_lm, torch_lm


def lstm_pairs(mx_lm, torch_lm):
    """(name, Gluon parameter, PyTorch parameter) for every weight and bias of the LSTM."""
    return [
        (f"{g}_l{i}", getattr(mx_lm.rnn.rnn, f"l{i}_{g}"), getattr(torch_lm.rnn.rnn, f"{t}_l{i}"))
        for i in range(L)
        for g, t in PAIRS
    ]


def test_mxnet_lstm_starts_like_the_pytorch_lstm(lstms):
    """Each weight and bias tensor has the spread of nn.LSTM's (uniform, +-1/sqrt(h))."""
    mx_lm, torch_lm = models(lstms)
    for name, m, t in lstm_pairs(mx_lm, torch_lm):
        a, b = m.data().asnumpy(), t.detach().numpy()
        assert a.shape == b.shape, name
        spread, reference = float(a.std()), float(b.std())
        assert 0.8 < spread / reference < 1.25, f"{name}: std {spread:.4f} vs {reference:.4f}"
        assert onp.abs(a).max() <= H**-0.5 + 1e-6, name


def test_same_weights_same_training_steps(lstms):
    """From the same weights and batches, each shim trainer takes the same 10 clipped steps."""
    mx_lm, torch_lm = models(lstms)
    params = lstm_pairs(mx_lm, torch_lm) + [
        ("dense_weight", mx_lm.linear.weight, torch_lm.linear.weight),
        ("dense_bias", mx_lm.linear.bias, torch_lm.linear.bias),
    ]
    with torch.no_grad():
        for _, m, t in params:
            t.copy_(torch.tensor(m.data().asnumpy()))
    data = d2l_mx.TimeMachine(batch_size=64, num_steps=16, num_train=640, num_val=64)
    trainers = []
    for d2l, model in ((d2l_mx, mx_lm), (d2l_torch, torch_lm)):
        trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=0.1)  # clips every step
        trainer.prepare_data(data)
        trainer.model, model.trainer = model, trainer
        trainer.prepare_model(model)
        trainer.optim = model.configure_optimizers()
        trainers.append(trainer)
    rng = onp.random.default_rng(0)
    losses = []
    for _ in range(10):
        rows = rng.choice(640, 64, replace=False)
        X, Y = data.X[rows], data.Y[rows]
        mx_batch = [mx.np.array(A, dtype="int32") for A in (X, Y)]
        mx_loss = trainers[0].train_step(mx_batch)
        torch_loss = trainers[1].train_step([torch.tensor(X), torch.tensor(Y)])
        losses.append((float(mx_loss.item()), float(torch_loss.item())))
    mx_losses, torch_losses = onp.array(losses).T
    onp.testing.assert_allclose(mx_losses, torch_losses, rtol=0, atol=1e-4)
    assert mx_losses[-1] < mx_losses[0] - 0.1  # it learned (lr 2): not a trivial agreement
    for name, m, t in params:
        onp.testing.assert_allclose(
            m.data().asnumpy(), t.detach().numpy(), rtol=0, atol=1e-4, err_msg=name
        )
