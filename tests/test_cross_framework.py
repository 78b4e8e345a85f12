"""The frameworks against each other and the NumPy reference: same weights, same logits, same
generated text. One case per pair of frameworks, run where both are installed (the pinned
stack: all three pairs; the current stack: PyTorch and TensorFlow)."""

import importlib.util
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import reference_rnn as ref
from frameworks import FRAMEWORKS, load

from d2l_shim._common import TIME_MACHINE, build_corpus, fetch

V, H, B, T = 28, 32, 4, 5  # vocab_size, num_hiddens, batch_size, num_steps


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(pair, marks=[getattr(pytest.mark, name) for name in pair], id="-".join(pair))
        for pair in combinations(FRAMEWORKS, 2)
    ],
)
def pair(request):
    return [load(name) for name in request.param]


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(1)  # seed 0: the greedy GRU repeats one token, a weak check
    X = rng.integers(0, V, (B, T))  # (batch_size, num_steps) token indices
    return X, {kind: ref.random_language_model(rng, kind, V, H) for kind in ("scratch", "gru")}


@pytest.fixture(scope="module")
def vocab():
    return build_corpus(fetch(TIME_MACHINE).read_text(encoding="utf-8"))[1]


@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_logits_agree(pair, weights, kind):
    X, w = weights
    want = ref.language_model(X, w[kind])
    logits = {fw.name: fw.numpy(fw.language_model(w[kind])(fw.tensor(X))) for fw in pair}
    for name, Y in logits.items():
        np.testing.assert_allclose(Y, want, rtol=0, atol=1e-5, err_msg=f"{name}/NumPy")
    a, b = logits
    np.testing.assert_allclose(logits[a], logits[b], rtol=0, atol=1e-5, err_msg=f"{a}/{b}")


@pytest.mark.parametrize("kind", ["scratch", "gru"])
def test_greedy_predictions_agree(pair, weights, vocab, kind):
    assert len(vocab) == V
    w = weights[1][kind]
    texts = {fw.name: fw.language_model(w).predict("it has", 10, vocab) for fw in pair}
    assert len(set(texts.values())) == 1, texts
    text = next(iter(texts.values()))
    assert text.startswith("it has") and len(set(text[6:])) > 2  # not one repeated token


@pytest.mark.torch
@pytest.mark.tensorflow
def test_torch_and_tensorflow_share_one_process():
    """conftest.py loads PyTorch (and triton) before TensorFlow can: the other order aborts
    the process with the CUDA build of PyTorch and TensorFlow 2.21 (LLVM options)."""
    for name in ("torch", "tensorflow"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed in this environment")
    code = (  # triton last, as torch loads it on demand (torch.compile, some kernels)
        "import conftest, tensorflow as tf, torch\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('triton'): import triton\n"
        "print(float(tf.reduce_sum(tf.ones(2))), float(torch.ones(2).sum()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2.0", "2.0"]
