"""Text pipeline of the core: cleaning, vocabulary, windows, TimeMachine (no framework)."""

import string
import tracemalloc

import numpy as np
import pytest

from d2l_shim._common import TimeMachine, Vocab, build_corpus, make_windows, text
from d2l_shim._common.text import BatchLoader, preprocess, tokenize

NUM_STEPS = 32


@pytest.fixture(scope="module")
def data():
    return TimeMachine(batch_size=1000, num_steps=NUM_STEPS)


# ---- cleaning and tokens ---------------------------------------------------------------------
def test_preprocess_keeps_lower_case_letters_and_single_spaces():
    assert (
        preprocess("The Time-Machine, by H. G. Wells!\n\n1895") == "the time machine by h g wells "
    )
    assert preprocess("À l'été") == " l t "  # accented letters are not in a-z


def test_tokenize_gives_characters():
    assert tokenize("ab c") == ["a", "b", " ", "c"]
    assert tokenize("") == []


# ---- vocabulary ------------------------------------------------------------------------------
def test_time_machine_vocab_has_28_tokens_in_order(data):
    assert len(data.vocab) == 28
    assert data.vocab.idx_to_token == [" ", "<unk>", *string.ascii_lowercase]
    assert data.vocab.token_to_idx == {t: i for i, t in enumerate(data.vocab.idx_to_token)}
    assert data.vocab.unk == 1


def test_vocab_unknown_token_maps_to_unk():
    vocab = Vocab(list("hello world"))
    assert vocab["Z"] == vocab.unk == vocab["<unk>"]
    assert vocab["not a token"] == vocab.unk


def test_vocab_getitem_on_list_and_tuple():
    vocab = Vocab(list("abc"))
    a, b = vocab["a"], vocab["b"]
    assert vocab[["a", "b", "?"]] == [a, b, vocab.unk]
    assert vocab[("b", "a")] == [b, a]
    assert vocab[["a"]] == [a]
    assert vocab[[]] == []


def test_vocab_to_tokens_int_list_one_element_and_numpy():
    vocab = Vocab(list("abc"))
    assert vocab.to_tokens(vocab["b"]) == "b"
    # d2l 1.0.3 fails on a one-element list (it indexes idx_to_token with the list)
    assert vocab.to_tokens([vocab["c"]]) == ["c"]
    assert vocab.to_tokens((vocab["a"], vocab["c"])) == ["a", "c"]
    assert vocab.to_tokens(np.array([vocab["a"], vocab["b"]])) == ["a", "b"]
    assert vocab.to_tokens(np.array([vocab["a"]])) == ["a"]
    assert vocab.to_tokens(np.int64(vocab["c"])) == "c"
    assert vocab.to_tokens(np.array(vocab["c"])) == "c"  # 0-d array


def test_vocab_nested_lists_reserved_tokens_and_min_freq():
    vocab = Vocab([list("aab"), list("ac")], min_freq=2, reserved_tokens=["<pad>"])
    assert vocab.idx_to_token == ["<pad>", "<unk>", "a"]  # b and c occur once
    assert vocab["b"] == vocab.unk
    assert vocab.token_freqs[0] == ("a", 3)


def test_build_corpus_reuses_a_given_vocab():
    corpus, vocab = build_corpus("Abc, ab!")
    assert vocab.to_tokens(corpus) == list("abc ab ")
    corpus2, vocab2 = build_corpus("cab", vocab)
    assert vocab2 is vocab
    assert corpus2 == vocab[list("cab")]


# ---- windows ---------------------------------------------------------------------------------
def test_make_windows_shapes_and_shift():
    corpus = list(range(10))
    X, Y = make_windows(corpus, 3)
    assert X.shape == Y.shape == (7, 3)
    assert X.dtype == Y.dtype == np.int64
    np.testing.assert_array_equal(X[0], [0, 1, 2])
    np.testing.assert_array_equal(X[-1], [6, 7, 8])
    np.testing.assert_array_equal(Y, X + 1)  # targets shifted by one
    X, Y = make_windows(corpus, 9)  # the longest window the corpus allows
    assert X.shape == (1, 9)
    np.testing.assert_array_equal(Y[0], range(1, 10))


@pytest.mark.parametrize("num_steps", [0, -1, 2.5, True, "3"])
def test_make_windows_rejects_bad_num_steps(num_steps):
    with pytest.raises(ValueError, match="num_steps"):
        make_windows(list(range(10)), num_steps)


@pytest.mark.parametrize("num_steps", [10, 11, 1000])
def test_make_windows_rejects_num_steps_too_long_for_corpus(num_steps):
    with pytest.raises(ValueError, match="num_steps"):
        make_windows(list(range(10)), num_steps)


# ---- TimeMachine -----------------------------------------------------------------------------
def test_time_machine_windows_and_batch_shapes(data):
    assert data.X.shape == data.Y.shape
    assert data.X.shape[1] == NUM_STEPS
    np.testing.assert_array_equal(data.X[1:, :], data.Y[:-1, :])  # overlapping, shifted
    np.testing.assert_array_equal(data.X[:, 1:], data.Y[:, :-1])
    train, val = data.train_dataloader(), data.val_dataloader()
    assert len(train) == 10 and len(val) == 5
    X, Y = next(iter(train))
    assert X.shape == Y.shape == (1000, NUM_STEPS)
    assert data.num_train == 10000 and data.num_val == 5000


def test_time_machine_last_batch_is_partial():
    data = TimeMachine(batch_size=300, num_steps=4, num_train=1000, num_val=500)
    sizes = [len(X) for X, _ in data.train_dataloader()]
    assert sizes == [300, 300, 300, 100]
    assert [len(X) for X, _ in data.val_dataloader()] == [300, 200]


def _rows(loader):
    return [tuple(row) for X, _ in loader for row in X.tolist()]


def test_time_machine_train_batches_are_shuffled_each_epoch(data):
    np.random.seed(0)
    loader = data.train_dataloader()
    epoch1, epoch2 = _rows(loader), _rows(loader)  # the loader is re-iterable
    assert epoch1 != epoch2
    assert epoch1 != _rows([(data.X[:10000], None)])  # not in corpus order
    expected = sorted(map(tuple, data.X[:10000].tolist()))
    assert sorted(epoch1) == sorted(epoch2) == expected
    # pairs stay aligned: each Y row is its X row shifted by one in the corpus
    for X, Y in loader:
        np.testing.assert_array_equal(X[:, 1:], Y[:, :-1])


def test_time_machine_validation_is_in_order_and_not_shuffled(data):
    loader = data.val_dataloader()
    Xs, Ys = zip(*loader, strict=True)
    np.testing.assert_array_equal(np.concatenate(Xs), data.X[10000:15000])
    np.testing.assert_array_equal(np.concatenate(Ys), data.Y[10000:15000])
    assert _rows(loader) == _rows(loader)


def test_set_seed_makes_the_order_reproducible(data):
    np.random.seed(1)
    first = _rows(data.train_dataloader())
    np.random.seed(1)
    assert _rows(data.train_dataloader()) == first


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -5}, "batch_size"),
        ({"batch_size": 2.0}, "batch_size"),
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 10**6}, "num_steps"),  # too long for the corpus
        ({"num_train": 0}, "num_train"),
        ({"num_val": 0}, "num_val"),
        ({"num_train": 10**6}, "num_train"),
        ({"num_val": 200_000}, "num_val"),
    ],
)
def test_time_machine_bad_input_names_the_parameter(kwargs, name):
    args = {"batch_size": 2, "num_steps": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        TimeMachine(**args)


class SmallBook(TimeMachine):
    """A 4,000-token corpus: windows of 1,000 tokens cost 32 MB if copied (2 x 8 bytes each)."""

    def _download(self):
        return "abc " * 1000


@pytest.fixture
def no_windows(monkeypatch):
    """Fail as soon as any window is built: the size checks must come first."""

    def refuse(corpus, num_steps):
        raise AssertionError(f"windows of num_steps={num_steps} built before the size check")

    monkeypatch.setattr(text, "make_windows", refuse)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [  # 4,000 tokens give 4,000 - num_steps windows; num_train + num_val of them are used
        ({"num_steps": 3000, "num_train": 500, "num_val": 600}, "au plus num_steps=2900"),
        ({"num_steps": 4000, "num_train": 500, "num_val": 600}, "au plus num_steps=2900"),
        ({"num_steps": 10, "num_train": 3500, "num_val": 600}, r"num_train \+ num_val = 4100"),
    ],
)
def test_window_sizes_are_checked_before_any_window_is_built(no_windows, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SmallBook(batch_size=8, **kwargs)


def test_num_steps_too_long_for_the_time_machine_names_the_limit(no_windows, data):
    num_tokens = len(data.X) + NUM_STEPS
    limit = num_tokens - 10000 - 5000  # default num_train, num_val
    with pytest.raises(ValueError) as info:
        TimeMachine(batch_size=8, num_steps=170_000)  # took 35 s and 9 GB to fail
    message = str(info.value)
    assert "num_steps=170000" in message and f"au plus num_steps={limit}" in message
    assert str(num_tokens) in message  # the corpus size the limit comes from


def test_long_windows_are_views_and_batches_are_copied_one_by_one():
    tracemalloc.start()
    try:
        data = SmallBook(batch_size=8, num_steps=1000, num_train=2000, num_val=1000)
        train, val = data.train_dataloader(), data.val_dataloader()
        X, Y = next(iter(train))
        Xv, Yv = next(iter(val))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # all 3,000 windows as copies: 48 MB
    assert X.shape == Y.shape == Xv.shape == (8, 1000)
    assert X.flags.writeable and Xv.flags.writeable and Xv.flags.c_contiguous  # own copies
    np.testing.assert_array_equal(Xv, data.X[2000:2008])
    np.testing.assert_array_equal(Yv[:, :-1], Xv[:, 1:])
    assert not data.X.flags.writeable  # a view of the corpus: writing into it would alias


def test_batch_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader([np.zeros(3)], batch_size=0, shuffle=False)


# ---- extra_files (exercise 2 of the section) -------------------------------------------------
EXTRA_TEXT = "It was the best of times, it was the worst of times!\n" * 20


def test_extra_files_add_training_windows_only(tmp_path):
    path = tmp_path / "extra.txt"
    path.write_text(EXTRA_TEXT, encoding="utf-8")
    base = TimeMachine(batch_size=64, num_steps=8, num_train=1000, num_val=500)
    more = TimeMachine(
        batch_size=64, num_steps=8, num_train=1000, num_val=500, extra_files=[str(path)]
    )
    corpus, _ = build_corpus(EXTRA_TEXT, base.vocab)
    n_file = len(corpus) - 8
    assert n_file == len(make_windows(corpus, 8)[0])
    base_train = sum(len(X) for X, _ in base.train_dataloader())
    more_train = sum(len(X) for X, _ in more.train_dataloader())
    assert base_train == 1000
    assert more_train == base_train + n_file
    assert more.vocab.idx_to_token == base.vocab.idx_to_token
    # the file's windows are in the training set
    rows = set(_rows(more.train_dataloader()))
    assert set(map(tuple, make_windows(corpus, 8)[0].tolist())) <= rows
    # validation unchanged
    for (Xb, Yb), (Xm, Ym) in zip(base.val_dataloader(), more.val_dataloader(), strict=True):
        np.testing.assert_array_equal(Xb, Xm)
        np.testing.assert_array_equal(Yb, Ym)


def test_extra_files_accepts_several_paths(tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"extra{i}.txt")
        paths[-1].write_text(EXTRA_TEXT, encoding="utf-8")
    data = TimeMachine(batch_size=64, num_steps=8, num_train=1000, num_val=500, extra_files=paths)
    n_file = len(build_corpus(EXTRA_TEXT, data.vocab)[0]) - 8
    assert sum(len(X) for X, _ in data.train_dataloader()) == 1000 + 2 * n_file


def test_extra_files_missing_file(tmp_path):
    with pytest.raises(ValueError, match="extra_files"):
        TimeMachine(2, 8, 1000, 500, extra_files=[tmp_path / "missing.txt"])


def test_extra_files_too_short(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Hello, world", encoding="utf-8")  # "hello world": 11 tokens
    with pytest.raises(ValueError, match="extra_files"):
        TimeMachine(2, 11, 1000, 500, extra_files=[path])
    data = TimeMachine(2, 10, 1000, 500, extra_files=[path])  # one window is enough
    assert len(data.X_extra) == 1


def test_extra_files_accepts_a_single_path(tmp_path):
    path = tmp_path / "extra.txt"
    path.write_text(EXTRA_TEXT, encoding="utf-8")
    for files in (path, str(path)):
        data = TimeMachine(2, 8, 1000, 500, extra_files=files)
        assert len(data.X_extra) == len(build_corpus(EXTRA_TEXT, data.vocab)[0]) - 8
