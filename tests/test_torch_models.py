"""PyTorch models of the shim: NumPy reference, training, bad input, and d2l 1.0.3."""

import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import reference_rnn as ref  # noqa: E402

from benchmarks.workloads import D2L_STACKED  # noqa: E402
from d2l_shim import torch as d2l  # noqa: E402

pytestmark = pytest.mark.torch

T, B, D, H, V = 7, 3, 5, 4, 28  # num_steps, batch_size, num_inputs, num_hiddens, vocab_size


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float32))


def assert_close(actual, expected, atol=1e-5):
    np.testing.assert_allclose(actual.detach().cpu().numpy(), expected, rtol=0, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def small_data():
    return d2l.TimeMachine(batch_size=256, num_steps=16, num_train=2048, num_val=512)


# ---- weights from the NumPy reference into PyTorch's layouts --------------------------------
def load_scratch(rnn, p):
    with torch.no_grad():
        rnn.W_xh.copy_(t(p["W_xh"]))
        rnn.W_hh.copy_(t(p["W_hh"]))
        rnn.b_h.copy_(t(p["b_h"]))


def load_concise(module, layers, gates):
    """nn.RNN / nn.GRU: weight_ih_l{k} is (gates * h, inputs), the gates stacked (r, z, n)."""
    with torch.no_grad():
        for k, p in enumerate(layers):
            if gates == "rnn":
                W_x, W_h, b_x = p["W_xh"], p["W_hh"], p["b_h"]
                b_h = np.zeros_like(b_x)
            else:
                W_x = np.concatenate([p[f"W_x{g}"] for g in "rzn"], axis=1)
                W_h = np.concatenate([p[f"W_h{g}"] for g in "rzn"], axis=1)
                b_x = np.concatenate([p[f"b_x{g}"] for g in "rzn"])
                b_h = np.concatenate([p[f"b_h{g}"] for g in "rzn"])
            getattr(module, f"weight_ih_l{k}").copy_(t(W_x.T))
            getattr(module, f"weight_hh_l{k}").copy_(t(W_h.T))
            getattr(module, f"bias_ih_l{k}").copy_(t(b_x))
            getattr(module, f"bias_hh_l{k}").copy_(t(b_h))


# ---- forward passes against the NumPy reference ---------------------------------------------
def test_rnn_scratch_matches_reference(rng):
    X = rng.normal(size=(T, B, D)).astype(np.float32)
    H0 = rng.normal(size=(B, H)).astype(np.float32)
    (p,) = ref.random_rnn_layers(rng, D, H, 1)
    rnn = d2l.RNNScratch(D, H)
    load_scratch(rnn, p)
    Y_ref, H_ref = ref.rnn_layer(X, H0, p)
    for state in (t(H0), (t(H0),)):  # a tensor, or a 1-tuple as d2l passes it
        outputs, state = rnn(t(X), state)
        d2l.check_len(outputs, T)
        d2l.check_shape(outputs[0], (B, H))
        assert_close(torch.stack(outputs), Y_ref)
        assert_close(state, H_ref)
    outputs, _ = rnn(t(X))  # zero initial state
    assert_close(torch.stack(outputs), ref.rnn_layer(X, np.zeros((B, H), np.float32), p)[0])


def test_stacked_rnn_scratch_matches_reference(rng):
    X = rng.normal(size=(T, B, D)).astype(np.float32)
    layers = ref.random_rnn_layers(rng, D, H, 2)
    rnn = d2l.StackedRNNScratch(D, H, 2)
    for layer, p in zip(rnn.rnns, layers, strict=True):
        load_scratch(layer, p)
    outputs, Hs = rnn(t(X))
    Y_ref, Hs_ref = ref.stacked(ref.rnn_layer, X, layers)
    d2l.check_shape(outputs, (T, B, H))
    assert_close(outputs, Y_ref)
    d2l.check_len(Hs, 2)
    for state, state_ref in zip(Hs, Hs_ref, strict=True):
        assert_close(state, state_ref)


@pytest.mark.parametrize(("kind", "num_layers"), [("rnn", 1), ("gru", 1), ("gru", 2)])
def test_concise_matches_reference(rng, kind, num_layers):
    X = rng.normal(size=(T, B, D)).astype(np.float32)
    if kind == "rnn":  # d2l's concise RNN has one layer
        layers, layer_fn, model = ref.random_rnn_layers(rng, D, H, 1), ref.rnn_layer, d2l.RNN(D, H)
    else:
        layers, layer_fn = ref.random_gru_layers(rng, D, H, num_layers), ref.gru_layer
        model = d2l.GRU(D, H, num_layers)
    load_concise(model.rnn, layers, kind)
    H0 = rng.normal(size=(num_layers, B, H)).astype(np.float32)
    outputs, state = model(t(X), t(H0))
    Y_ref, Hs_ref = ref.stacked(layer_fn, X, layers, list(H0))
    d2l.check_shape(outputs, (T, B, H))
    d2l.check_shape(state, (num_layers, B, H))
    assert_close(outputs, Y_ref)
    assert_close(state, np.stack(Hs_ref))


def test_language_models_match_reference(rng):
    X = rng.integers(0, V, size=(B, T))
    one_hot = np.eye(V, dtype=np.float32)[X.T]  # (T, B, V)
    W_hq = rng.normal(0, 0.3, (H, V)).astype(np.float32)
    b_q = rng.normal(0, 0.3, (V,)).astype(np.float32)

    layers = ref.random_rnn_layers(rng, V, H, 2)
    scratch = d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V)
    for layer, p in zip(scratch.rnn.rnns, layers, strict=True):
        load_scratch(layer, p)
    with torch.no_grad():
        scratch.W_hq.copy_(t(W_hq))
        scratch.b_q.copy_(t(b_q))
    Y_ref = ref.output_layer(ref.stacked(ref.rnn_layer, one_hot, layers)[0], W_hq, b_q)
    d2l.check_shape(scratch(torch.tensor(X)), (B, T, V))
    assert_close(scratch(torch.tensor(X)), Y_ref)

    layers = ref.random_gru_layers(rng, V, H, 2)
    concise = d2l.RNNLM(d2l.GRU(V, H, 2), V)
    load_concise(concise.rnn.rnn, layers, "gru")
    with torch.no_grad():
        concise.linear.weight.copy_(t(W_hq.T))
        concise.linear.bias.copy_(t(b_q))
    Y_ref = ref.output_layer(ref.stacked(ref.gru_layer, one_hot, layers)[0], W_hq, b_q)
    assert_close(concise(torch.tensor(X)), Y_ref)


def test_parameter_counts():
    def count(model):
        return sum(p.numel() for p in model.parameters())

    assert count(d2l.RNNLMScratch(d2l.StackedRNNScratch(28, 32, 2), 28)) == 4956
    assert count(d2l.RNNLM(d2l.GRU(28, 32, 2), 28)) == 13212


# ---- training --------------------------------------------------------------------------------
class OneBatch(d2l.DataModule):
    """The first ``n`` training windows as a single batch, no validation: one step per epoch."""

    def __init__(self, data, n=64):
        super().__init__()
        self.batch_size, self.X, self.Y = n, data.X[:n], data.Y[:n]

    def get_dataloader(self, train):
        return self.get_tensorloader([self.X, self.Y], train) if train else None


def language_models():
    return {
        "stacked scratch": lambda: d2l.RNNLMScratch(d2l.StackedRNNScratch(V, 32, 2), V, lr=1),
        "scratch": lambda: d2l.RNNLMScratch(d2l.RNNScratch(V, 32), V, lr=1),
        "gru": lambda: d2l.RNNLM(d2l.GRU(V, 32, 2, dropout=0.1), V, lr=1),
        "rnn": lambda: d2l.RNNLM(d2l.RNN(V, 32), V, lr=1),
    }


@pytest.mark.parametrize("name", list(language_models()))
def test_one_step_changes_every_parameter(small_data, name):
    d2l.set_seed(0)
    model = language_models()[name]()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    d2l.Trainer(max_epochs=1, gradient_clip_val=1).fit(model, OneBatch(small_data))
    unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert not unchanged, f"parameters not trained: {unchanged}"


def val_ppl(model, data):
    with torch.no_grad():
        losses = [model.loss(model(X), Y) for X, Y in data.val_dataloader()]
    return float(torch.exp(torch.stack(losses).mean()))


@pytest.mark.parametrize("name", ["stacked scratch", "gru"])
def test_short_training_lowers_perplexity(small_data, name):
    d2l.set_seed(0)
    model = language_models()[name]()
    model.lr = 4
    start = val_ppl(model, small_data)
    trainer = d2l.Trainer(max_epochs=2, gradient_clip_val=1)
    trainer.fit(model, small_data)
    assert start > 25  # about the vocabulary size before training
    assert trainer.history["val_ppl"][-1][1] < start - 5
    assert len(trainer.history["val_ppl"]) == 2


def test_seeded_runs_give_identical_losses(small_data):
    def run():
        d2l.set_seed(0)
        trainer = d2l.Trainer(max_epochs=3, gradient_clip_val=1)
        trainer.fit(language_models()["stacked scratch"](), OneBatch(small_data, n=256))
        return dict(trainer.history)

    assert run() == run()


def test_epoch_cap_from_environment(monkeypatch, small_data):
    monkeypatch.setenv("D2L_MAX_EPOCHS", "1")
    trainer = d2l.Trainer(max_epochs=100)
    assert trainer.max_epochs == 1
    trainer.fit(language_models()["rnn"](), OneBatch(small_data))
    assert len(trainer.epoch_times) == 1


def test_nan_loss_stops_training(small_data):
    model = language_models()["rnn"]()
    model.loss = lambda Y_hat, Y: d2l.Classifier.loss(model, Y_hat, Y) * float("nan")
    with pytest.raises(FloatingPointError, match="lr=1.*gradient_clip_val"):
        d2l.Trainer(max_epochs=2).fit(model, small_data)


def test_huge_lr_without_clipping_diverges(small_data):
    d2l.set_seed(0)
    model = d2l.RNNLMScratch(d2l.RNNScratch(V, 32), V, lr=1e6)
    with pytest.raises(FloatingPointError, match="lr=1000000.*gradient_clip_val=0"):
        d2l.Trainer(max_epochs=1).fit(model, small_data)


def test_predict(small_data):
    d2l.set_seed(0)
    model = language_models()["gru"]()
    vocab = small_data.vocab
    text = model.predict("it has", 10, vocab)
    assert isinstance(text, str) and len(text) == 16 and text.startswith("it has")
    assert model.training  # predict restores the mode
    assert model.predict("É t", 2, vocab, d2l.cpu()).startswith("<unk> t")
    assert len(model.predict("x", 0, vocab)) == 1


def test_fallback_to_cpu_prints_one_line(capsys, small_data):
    if d2l.num_gpus():
        pytest.skip("a GPU is present")
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
    assert trainer.device == d2l.cpu()
    trainer.fit(language_models()["rnn"](), OneBatch(small_data))
    lines = [line for line in capsys.readouterr().out.splitlines() if "num_gpus=1" in line]
    assert len(lines) == 1 and "cpu" in lines[0]


def test_devices():
    assert d2l.cpu() == torch.device("cpu")
    assert d2l.num_gpus() == torch.cuda.device_count()
    assert d2l.try_gpu(99) == d2l.cpu()
    with pytest.raises(ValueError, match=r"gpu\(5\)"):
        d2l.gpu(5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_trains_on_cuda(small_data):
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1, gradient_clip_val=1)
    model = language_models()["gru"]()
    trainer.fit(model, small_data)
    assert next(model.parameters()).is_cuda
    assert len(model.predict("it", 5, small_data.vocab)) == 7


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("num_inputs", lambda: d2l.RNNScratch(0, 4)),
        ("num_hiddens", lambda: d2l.RNNScratch(4, 0)),
        ("num_hiddens", lambda: d2l.StackedRNNScratch(4, -1, 2)),
        ("num_layers", lambda: d2l.StackedRNNScratch(4, 4, 0)),
        ("num_layers", lambda: d2l.GRU(4, 4, 0)),
        ("num_hiddens", lambda: d2l.GRU(4, 0, 2)),
        ("dropout", lambda: d2l.GRU(4, 4, 2, dropout=1.5)),
        ("num_hiddens", lambda: d2l.RNN(4, 0)),
        ("vocab_size", lambda: d2l.RNNLMScratch(d2l.RNNScratch(4, 4), 0)),
        ("lr", lambda: d2l.RNNLMScratch(d2l.RNNScratch(4, 4), 4, lr=0)),
        ("lr", lambda: d2l.RNNLM(d2l.GRU(4, 4, 1), 4, lr=-1)),
        ("batch_size", lambda: d2l.TimeMachine(batch_size=0, num_steps=8)),
        ("num_steps", lambda: d2l.TimeMachine(batch_size=8, num_steps=0)),
        ("num_steps", lambda: d2l.TimeMachine(batch_size=8, num_steps=10**7)),
        ("num_gpus", lambda: d2l.Trainer(max_epochs=1, num_gpus=-1)),
        ("gradient_clip_val", lambda: d2l.Trainer(max_epochs=1, gradient_clip_val=-1)),
        ("max_epochs", lambda: d2l.Trainer(max_epochs=0)),
    ],
)
def test_bad_input_names_the_parameter(name, make):
    with pytest.raises(ValueError, match=name):
        make()


def test_bad_predict_device(small_data):
    model = language_models()["rnn"]()
    with pytest.raises(ValueError, match="device"):
        model.predict("it", 3, small_data.vocab, device="toaster")
    with pytest.raises(ValueError, match="device"):
        model.predict("it", 3, small_data.vocab, device=3.5)


def test_public_names():
    assert len(d2l.__all__) == 22
    for name in d2l.__all__:
        assert hasattr(d2l, name), name


# ---- d2l 1.0.3 -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def d2l_ref():
    """d2l 1.0.3's torch module, its torchvision import satisfied by empty modules."""
    pytest.importorskip("d2l")
    stubs = {"torchvision": types.ModuleType("torchvision")}
    stubs["torchvision.transforms"] = stubs["torchvision"].transforms = types.ModuleType(
        "torchvision.transforms"
    )
    for name, module in stubs.items():
        sys.modules.setdefault(name, module)
    from d2l import torch as reference

    return reference


@pytest.mark.reference
def test_data_pipeline_equals_d2l(d2l_ref, small_data):
    class Local(d2l_ref.TimeMachine):
        def _download(self):
            return small_data._download()

    theirs = Local(batch_size=256, num_steps=16, num_train=2048, num_val=512)
    assert theirs.vocab.idx_to_token == small_data.vocab.idx_to_token
    assert len(small_data.vocab) == 28
    np.testing.assert_array_equal(theirs.X.numpy(), small_data.X)
    np.testing.assert_array_equal(theirs.Y.numpy(), small_data.Y)
    (X, Y), (X_ref, Y_ref) = (
        next(iter(small_data.val_dataloader())),
        next(iter(theirs.val_dataloader())),
    )
    assert torch.equal(X, X_ref) and torch.equal(Y, Y_ref)


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["scratch", "gru", "rnn"])
def test_copied_weights_give_d2l_outputs(d2l_ref, small_data, kind):
    torch.manual_seed(0)
    if kind == "scratch":
        theirs = d2l_ref.RNNLMScratch(d2l_ref.RNNScratch(V, 32), V)
        ours = d2l.RNNLMScratch(d2l.RNNScratch(V, 32), V)
    elif kind == "gru":
        theirs = d2l_ref.RNNLM(d2l_ref.GRU(V, 32, 2), V)
        ours = d2l.RNNLM(d2l.GRU(V, 32, 2), V)
    else:
        theirs = d2l_ref.RNNLM(d2l_ref.RNN(V, 32), V)
        ours = d2l.RNNLM(d2l.RNN(V, 32), V)
    X = torch.tensor(small_data.X[:8])
    expected = theirs(X)  # also creates d2l's lazy output layer
    ours.load_state_dict(theirs.state_dict())
    assert_close(ours(X), expected.detach().numpy())
    vocab = small_data.vocab
    assert ours.predict("time traveller", 20, vocab) == theirs.predict("time traveller", 20, vocab)


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_training_steps_equal_d2l(d2l_ref, small_data, kind):
    """Same weights, same batches: our steps (loss, clipping, SGD) give d2l's losses and
    weights, the section's models at lr 2 with a clipping bound the gradients exceed."""
    clip = 0.05
    if kind == "scratch":
        namespace = {"d2l": d2l_ref, "torch": torch, "nn": torch.nn}
        exec(D2L_STACKED["pytorch"], namespace)  # d2l 1.0.3 has no StackedRNNScratch
        theirs = d2l_ref.RNNLMScratch(namespace["StackedRNNScratch"](V, 32, 2), V, lr=2)
        ours = d2l.RNNLMScratch(d2l.StackedRNNScratch(V, 32, 2), V, lr=2)
    else:
        theirs = d2l_ref.RNNLM(d2l_ref.GRU(V, 32, 2), V, lr=2)
        ours = d2l.RNNLM(d2l.GRU(V, 32, 2), V, lr=2)
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=clip)
    trainer.fit(ours, small_data)  # prepares the trainer; the weights are replaced below
    batches = list(small_data.train_dataloader())
    theirs(batches[0][0])  # creates d2l's lazy output layer
    ours.load_state_dict(theirs.state_dict())
    theirs.plot = lambda *args, **kwargs: None  # d2l's board needs its own trainer's counters
    ref_trainer, optim, norms = d2l_ref.Trainer(max_epochs=1), theirs.configure_optimizers(), []
    for batch in batches:
        ref_loss = theirs.training_step(batch)
        optim.zero_grad()
        ref_loss.backward()
        norms.append(float(sum((p.grad**2).sum() for p in theirs.parameters()) ** 0.5))
        ref_trainer.clip_gradients(clip, theirs)
        optim.step()
        loss = trainer.train_step(trainer.prepare_batch(batch))
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    assert min(norms) > clip  # clipping was active at every step
    for (name, mine), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        np.testing.assert_allclose(mine.numpy(), other.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
