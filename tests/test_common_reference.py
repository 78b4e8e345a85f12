"""The core's data pipeline equals d2l 1.0.3's (vocabulary, indices, windows, split).

d2l's torch module imports torchvision, which is not installed: empty modules stand in for it.
It downloads into its ``root`` folder; here its ``download`` returns the shared copy instead.
"""

import sys
import types

import numpy as np
import pytest

from d2l_shim._common import TIME_MACHINE, TimeMachine, Vocab, build_corpus, fetch

pytestmark = pytest.mark.reference

NUM_STEPS = 32


@pytest.fixture(scope="module")
def d2l():
    pytest.importorskip("torch")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("torchvision", "torchvision.transforms"):
            if name not in sys.modules:
                mp.setitem(sys.modules, name, types.ModuleType(name))
        try:
            from d2l import torch as d2l_torch
        except ImportError as e:
            pytest.skip(f"d2l 1.0.3 is not importable: {e}")
    return d2l_torch


@pytest.fixture(scope="module")
def pair(d2l):
    """The same TimeMachine from d2l and from the core; d2l reads the shared file."""
    path = fetch(TIME_MACHINE)
    calls = []

    def download(url, folder="../data", sha1_hash=None):
        calls.append((url, sha1_hash))
        return str(path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(d2l, "download", download)
        theirs = d2l.TimeMachine(batch_size=1000, num_steps=NUM_STEPS)
    assert calls == [(TIME_MACHINE.url, TIME_MACHINE.sha1)]  # same file, same checksum
    ours = TimeMachine(batch_size=1000, num_steps=NUM_STEPS)
    return theirs, ours, path


def test_vocabulary_equals_d2l(pair):
    theirs, ours, _ = pair
    assert ours.vocab.idx_to_token == theirs.vocab.idx_to_token
    assert ours.vocab.token_to_idx == theirs.vocab.token_to_idx
    assert ours.vocab.token_freqs == theirs.vocab.token_freqs
    assert ours.vocab.unk == theirs.vocab.unk


def test_corpus_indices_equal_d2l(pair):
    theirs, _, path = pair
    raw = path.read_text(encoding="utf-8")
    their_corpus, their_vocab = theirs.build(raw)
    our_corpus, our_vocab = build_corpus(raw)
    assert our_corpus == their_corpus
    assert len(our_corpus) == 173428


def test_windows_equal_d2l(pair):
    theirs, ours, _ = pair
    np.testing.assert_array_equal(ours.X, theirs.X.numpy())
    np.testing.assert_array_equal(ours.Y, theirs.Y.numpy())


def test_train_validation_split_equals_d2l(pair):
    theirs, ours, _ = pair
    their_train = theirs.train_dataloader().dataset.tensors
    our_rows = sorted(map(tuple, np.concatenate([X for X, _ in ours.train_dataloader()]).tolist()))
    assert our_rows == sorted(map(tuple, their_train[0].numpy().tolist()))
    assert len(theirs.train_dataloader()) == len(ours.train_dataloader())
    for (Xt, Yt), (Xo, Yo) in zip(theirs.val_dataloader(), ours.val_dataloader(), strict=True):
        np.testing.assert_array_equal(Xo, Xt.numpy())
        np.testing.assert_array_equal(Yo, Yt.numpy())


@pytest.mark.parametrize(
    ("tokens", "min_freq", "reserved"),
    [
        (list("hello world"), 0, []),
        ([list("aab"), list("acd")], 2, ["<pad>", "<bos>"]),
        (["the", "time", "machine", "by", "h", "g", "wells", "the"], 2, []),
    ],
)
def test_vocab_equals_d2l_on_other_inputs(d2l, tokens, min_freq, reserved):
    theirs = d2l.Vocab(tokens, min_freq=min_freq, reserved_tokens=reserved)
    ours = Vocab(tokens, min_freq=min_freq, reserved_tokens=reserved)
    assert ours.idx_to_token == theirs.idx_to_token
    probe = ["a", "h", "zz", "<pad>"]
    assert ours[probe] == theirs[probe]
    assert ours.to_tokens([0, 1]) == theirs.to_tokens([0, 1])
    assert ours.to_tokens(1) == theirs.to_tokens(1)
