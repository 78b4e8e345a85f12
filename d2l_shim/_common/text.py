"""The Time Machine as character tokens: cleaning, vocabulary, windows and batches."""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .download import TIME_MACHINE, fetch
from .hyperparams import HyperParameters, check_positive_int


def preprocess(raw_text: str) -> str:
    """Keep letters only, as lower case; every other run of characters becomes one space."""
    return re.sub("[^A-Za-z]+", " ", raw_text).lower()


def tokenize(text: str) -> list[str]:
    """Character tokens."""
    return list(text)


class Vocab:
    """Token <-> index table. Unknown tokens map to ``<unk>``.

    Indices follow the sorted order of the tokens (for The Time Machine: space, ``<unk>``,
    then a-z), as in d2l.
    """

    def __init__(self, tokens: Iterable = (), min_freq: int = 0, reserved_tokens: Sequence = ()):
        tokens = list(tokens)
        if tokens and isinstance(tokens[0], list):
            tokens = [token for line in tokens for token in line]
        counter = collections.Counter(tokens)
        self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        kept = [token for token, freq in self.token_freqs if freq >= min_freq]
        self.idx_to_token = sorted(set(["<unk>", *reserved_tokens, *kept]))
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens: Any) -> Any:
        if isinstance(tokens, (list, tuple)):
            return [self.__getitem__(token) for token in tokens]
        return self.token_to_idx.get(tokens, self.unk)

    def to_tokens(self, indices: Any) -> Any:
        """Index -> token; a list, tuple or 1-d array of indices -> a list of tokens."""
        if hasattr(indices, "tolist"):  # NumPy or framework array/scalar
            indices = indices.tolist()
        if isinstance(indices, (list, tuple)):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self) -> int:
        return self.token_to_idx["<unk>"]


def build_corpus(raw_text: str, vocab: Vocab | None = None) -> tuple[list[int], Vocab]:
    """Clean and tokenize ``raw_text``; return its token indices and the vocabulary."""
    tokens = tokenize(preprocess(raw_text))
    if vocab is None:
        vocab = Vocab(tokens)
    return [vocab[token] for token in tokens], vocab


def make_windows(corpus: Sequence[int], num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """All overlapping windows: inputs ``X`` and targets ``Y`` shifted by one.

    Returns two read-only int64 views of one copy of the corpus, of shape
    (len(corpus) - num_steps, num_steps): no window is copied (num_steps=20000 on
    The Time Machine would otherwise take 2 x 25 GB).
    """
    num_steps = check_positive_int("num_steps", num_steps)
    corpus = np.asarray(corpus, dtype=np.int64)
    if num_steps >= len(corpus):
        raise ValueError(
            f"num_steps={num_steps} est trop long pour un corpus de {len(corpus)} "
            f"jetons : il faut num_steps < {len(corpus)}"
        )
    windows = np.lib.stride_tricks.sliding_window_view(corpus, num_steps + 1)
    return windows[:, :-1], windows[:, 1:]  # (num_windows, num_steps) each


def check_window_counts(num_tokens: int, num_steps: int, num_train: int, num_val: int) -> None:
    """ValueError naming the parameter when the corpus has too few windows for the split.

    A corpus of ``num_tokens`` tokens gives ``num_tokens - num_steps`` windows, so the
    split needs ``num_train + num_val + num_steps <= num_tokens``. Checked before any
    window is built.
    """
    wanted = num_train + num_val
    if wanted < num_tokens and num_steps > num_tokens - wanted:
        raise ValueError(
            f"num_steps={num_steps} est trop long : avec num_train={num_train} et "
            f"num_val={num_val} fenêtres, le corpus de {num_tokens} jetons permet au plus "
            f"num_steps={num_tokens - wanted}"
        )
    if wanted > num_tokens - num_steps:
        raise ValueError(
            f"num_train + num_val = {wanted} dépasse les {max(0, num_tokens - num_steps)} "
            f"fenêtres disponibles avec num_steps={num_steps} (corpus de {num_tokens} jetons)"
        )


def _own_copy(batch: np.ndarray) -> np.ndarray:
    """The batch itself if it owns writable memory, else a copy (windows are read-only views)."""
    return batch if batch.flags.writeable and batch.flags.c_contiguous else batch.copy()


class BatchLoader:
    """Minibatches of NumPy arrays, shuffled each epoch when ``shuffle``; re-iterable.

    ``convert`` turns each NumPy batch into the framework's tensors. The permutation comes
    from NumPy's global generator, so ``set_seed`` makes the order reproducible.
    """

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        batch_size: int,
        shuffle: bool,
        convert: Callable[[np.ndarray], Any] = lambda a: a,
    ):
        self.arrays = tuple(arrays)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = shuffle
        self.convert = convert
        self.num_examples = len(self.arrays[0])

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        n = self.num_examples
        order = np.random.permutation(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            part = slice(start, start + self.batch_size)
            if order is not None:
                part = order[part]
            yield tuple(self.convert(_own_copy(a[part])) for a in self.arrays)


class DataModule(HyperParameters):
    """Base of the data modules; framework modules set ``to_tensor``."""

    def __init__(self, root: str = "../data", num_workers: int = 4):
        self.save_hyperparameters()

    @staticmethod
    def to_tensor(array: np.ndarray) -> Any:
        return array

    def get_dataloader(self, train: bool):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors: Sequence, train: bool, indices: Any = slice(0, None)):
        arrays = [np.asarray(t)[indices] for t in tensors]
        return BatchLoader(arrays, self.batch_size, shuffle=train, convert=self.to_tensor)


class TimeMachine(DataModule):
    """The Time Machine, by H. G. Wells, as character windows for language modelling.

    ``extra_files``: more local text files whose windows are added to the training set
    (the validation set stays The Time Machine's, for comparable perplexities).
    """

    def __init__(
        self,
        batch_size: int,
        num_steps: int,
        num_train: int = 10000,
        num_val: int = 5000,
        extra_files: str | Path | Sequence[str | Path] = (),
    ):
        super().__init__()
        self.save_hyperparameters()
        check_positive_int("batch_size", batch_size)
        check_positive_int("num_steps", num_steps)
        check_positive_int("num_train", num_train)
        check_positive_int("num_val", num_val)
        corpus, self.vocab = self.build(self._download())
        check_window_counts(len(corpus), num_steps, num_train, num_val)
        self.X, self.Y = make_windows(corpus, num_steps)  # (num_windows, num_steps), views
        self.X_extra, self.Y_extra = self._extra_windows(extra_files)

    def _download(self) -> str:
        with open(fetch(TIME_MACHINE), encoding="utf-8") as f:
            return f.read()

    def build(self, raw_text: str, vocab: Vocab | None = None) -> tuple[list[int], Vocab]:
        return build_corpus(raw_text, vocab)

    def _extra_windows(self, files: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
        X = np.zeros((0, self.num_steps), dtype=np.int64)
        Xs, Ys = [X], [X]
        if isinstance(files, (str, Path)):  # one path rather than a list of paths
            files = [files]
        for name in files:
            path = Path(name)
            if not path.is_file():
                raise ValueError(f"extra_files : {path} n'existe pas")
            corpus, _ = self.build(path.read_text(encoding="utf-8"), self.vocab)
            if len(corpus) <= self.num_steps:
                raise ValueError(
                    f"extra_files : {path} ne contient que {len(corpus)} jetons, "
                    f"trop peu pour num_steps={self.num_steps}"
                )
            X_file, Y_file = make_windows(corpus, self.num_steps)
            Xs.append(X_file)
            Ys.append(Y_file)
        return np.concatenate(Xs), np.concatenate(Ys)

    def get_dataloader(self, train: bool):
        if train:
            idx = slice(0, self.num_train)
            if not len(self.X_extra):  # the views as they are: batches are copied one by one
                return self.get_tensorloader([self.X, self.Y], train, idx)
            X = np.concatenate([self.X[idx], self.X_extra])
            Y = np.concatenate([self.Y[idx], self.Y_extra])
            return self.get_tensorloader([X, Y], train)
        idx = slice(self.num_train, self.num_train + self.num_val)
        return self.get_tensorloader([self.X, self.Y], train, idx)
