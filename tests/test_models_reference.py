"""The shim against d2l 1.0.3 itself, once per framework: data, outputs, training steps.

d2l 1.0.3 runs on the pinned stack only: its TensorFlow module needs Keras 2 (the adapter
skips it under Keras 3 and says why), its MXNet module MXNet 1.9.
"""

import numpy as np
import pytest

from benchmarks.workloads import D2L_STACKED
from d2l_shim._common import TIME_MACHINE, fetch

pytestmark = pytest.mark.reference
V, H = 28, 32  # vocab_size, num_hiddens


@pytest.fixture
def d2l_ref(fw, monkeypatch):
    """d2l 1.0.3's module for the framework, reading the same verified Time Machine file."""
    reference = fw.d2l_reference()
    text = fetch(TIME_MACHINE).read_text(encoding="utf-8")
    monkeypatch.setattr(reference.TimeMachine, "_download", lambda self: text)
    return reference


@pytest.fixture
def data(fw):
    return fw.d2l.TimeMachine(batch_size=256, num_steps=16, num_train=2048, num_val=512)


def test_data_pipeline_equals_d2l(fw, d2l_ref, data):
    theirs = d2l_ref.TimeMachine(256, 16, num_train=2048, num_val=512)
    assert theirs.vocab.idx_to_token == data.vocab.idx_to_token and len(data.vocab) == V
    np.testing.assert_array_equal(data.X, fw.numpy(theirs.X))
    np.testing.assert_array_equal(data.Y, fw.numpy(theirs.Y))
    ours, theirs = (next(iter(m.val_dataloader())) for m in (data, theirs))
    for mine, other in zip(ours, theirs, strict=True):  # validation is not shuffled
        np.testing.assert_array_equal(fw.numpy(mine), fw.numpy(other))


def section_models(fw, d2l_ref, kind, lr=2):
    """Ours and d2l's language model of the section: the stacked scratch RNN or the GRU."""
    d2l = fw.d2l
    if kind in ("gru", "rnn"):
        block = fw.gru if kind == "gru" else lambda *sizes, lib=None: fw.rnn(*sizes[:2], lib=lib)
        ours = d2l.RNNLM(block(V, H, 2), V, lr=lr)
        return ours, d2l_ref.RNNLM(block(V, H, 2, lib=d2l_ref), vocab_size=V, lr=lr)
    namespace = fw.d2l_namespace(d2l_ref)
    exec(D2L_STACKED[fw.book_name], namespace)  # d2l 1.0.3 has no StackedRNNScratch
    stacked = namespace["StackedRNNScratch"](V, H, 2)
    return (
        d2l.RNNLMScratch(d2l.StackedRNNScratch(V, H, 2), V, lr=lr),
        d2l_ref.RNNLMScratch(stacked, V, lr),
    )


@pytest.mark.parametrize("kind", ["scratch", "gru", "rnn"])
def test_copied_weights_give_d2l_outputs(fw, d2l_ref, data, kind):
    if kind == "rnn" and fw.name == "mxnet":
        pytest.skip("d2l 1.0.3's MXNet RNN is Gluon's default, ReLU; the shim's is tanh")
    fw.d2l.set_seed(0)
    ours, theirs = section_models(fw, d2l_ref, kind)
    X = fw.tensor(data.X[:8])
    ours(X), theirs(X)  # creates the lazy weights
    fw.copy_from_d2l(ours, theirs)
    np.testing.assert_allclose(fw.numpy(ours(X)), fw.numpy(theirs(X)), rtol=0, atol=1e-5)
    vocab = data.vocab
    assert ours.predict("time traveller", 20, vocab) == theirs.predict("time traveller", 20, vocab)


@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_training_steps_equal_d2l(fw, d2l_ref, data, kind):
    """Same weights, same batches: our steps (loss, clipping, SGD) give d2l's losses and
    weights, the section's models at lr 2 with a clipping bound the gradients exceed."""
    clip = 0.05
    ours, theirs = section_models(fw, d2l_ref, kind)
    trainer = fw.d2l.Trainer(max_epochs=1, gradient_clip_val=clip)
    trainer.fit(ours, data)  # prepares (compiles) the steps; the weights are replaced below
    batches = list(data.train_dataloader())
    theirs(batches[0][0])  # creates d2l's lazy weights
    fw.copy_from_d2l(ours, theirs)
    theirs.plot = lambda *args, **kwargs: None  # d2l's board needs its own trainer's counters
    ref_trainer = d2l_ref.Trainer(max_epochs=1, gradient_clip_val=clip)
    optim, norms = theirs.configure_optimizers(), []
    for batch in batches:
        ref_loss, norm = fw.d2l_step(theirs, optim, ref_trainer, batch, clip)
        norms.append(norm)
        loss = trainer.train_step(trainer.prepare_batch(batch))
        assert float(fw.numpy(loss)) == pytest.approx(ref_loss, rel=1e-5)
    assert min(norms) > clip  # clipping was active at every step
    mine, other = fw.parameters(ours).values(), fw.d2l_parameters(theirs)
    for a, b in zip(mine, other, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
