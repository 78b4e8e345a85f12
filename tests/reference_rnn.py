"""NumPy reference of the forward passes the shim implements, for the model tests.

Weights are given framework-neutrally, one dict per layer; each framework test converts them
to its own layout (mind the gate order: PyTorch and MXNet stack (r, z, n), Keras (z, r, n)
and stores kernels transposed).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def rnn_layer(X: np.ndarray, H: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """X: (num_steps, batch_size, num_inputs), H: (batch_size, num_hiddens)."""
    outputs = []
    for X_t in X:
        H = np.tanh(X_t @ p["W_xh"] + H @ p["W_hh"] + p["b_h"])  # H_t = phi(X_t W_xh + ...)
        outputs.append(H)
    return np.stack(outputs), H  # (num_steps, batch_size, num_hiddens)


def gru_layer(X: np.ndarray, H: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """GRU with the reset gate applied after the recurrent product (PyTorch, Keras, MXNet)."""
    outputs = []
    for X_t in X:
        r = sigmoid(X_t @ p["W_xr"] + p["b_xr"] + H @ p["W_hr"] + p["b_hr"])
        z = sigmoid(X_t @ p["W_xz"] + p["b_xz"] + H @ p["W_hz"] + p["b_hz"])
        n = np.tanh(X_t @ p["W_xn"] + p["b_xn"] + r * (H @ p["W_hn"] + p["b_hn"]))
        H = (1 - z) * n + z * H
        outputs.append(H)
    return np.stack(outputs), H


def stacked(layer, X: np.ndarray, layers: list[dict], states=None):
    """Run ``layer`` L times, each on the outputs of the previous one."""
    states = states or [None] * len(layers)
    final = []
    for p, H in zip(layers, states, strict=True):
        if H is None:
            H = np.zeros((X.shape[1], p["num_hiddens"]), dtype=X.dtype)
        X, H = layer(X, H, p)
        final.append(H)
    return X, final


def random_rnn_layers(rng, num_inputs: int, num_hiddens: int, num_layers: int) -> list[dict]:
    layers = []
    for i in range(num_layers):
        d = num_inputs if i == 0 else num_hiddens
        layers.append(
            {
                "num_hiddens": num_hiddens,
                "W_xh": rng.normal(0, 0.5, (d, num_hiddens)).astype(np.float32),
                "W_hh": rng.normal(0, 0.5, (num_hiddens, num_hiddens)).astype(np.float32),
                "b_h": rng.normal(0, 0.5, (num_hiddens,)).astype(np.float32),
            }
        )
    return layers


def random_gru_layers(rng, num_inputs: int, num_hiddens: int, num_layers: int) -> list[dict]:
    layers = []
    for i in range(num_layers):
        d = num_inputs if i == 0 else num_hiddens
        p = {"num_hiddens": num_hiddens}
        for g in "rzn":
            p[f"W_x{g}"] = rng.normal(0, 0.5, (d, num_hiddens)).astype(np.float32)
            p[f"W_h{g}"] = rng.normal(0, 0.5, (num_hiddens, num_hiddens)).astype(np.float32)
            p[f"b_x{g}"] = rng.normal(0, 0.5, (num_hiddens,)).astype(np.float32)
            p[f"b_h{g}"] = rng.normal(0, 0.5, (num_hiddens,)).astype(np.float32)
        layers.append(p)
    return layers


def output_layer(H: np.ndarray, W_hq: np.ndarray, b_q: np.ndarray) -> np.ndarray:
    """(num_steps, batch_size, num_hiddens) -> (batch_size, num_steps, vocab_size)."""
    return np.swapaxes(H @ W_hq + b_q, 0, 1)


def random_language_model(rng, kind: str, vocab_size: int, num_hiddens: int) -> dict:
    """Weights of the section's language model: kind "scratch" (2 RNN layers) or "gru"."""
    random_layers = random_rnn_layers if kind == "scratch" else random_gru_layers
    return {
        "kind": kind,
        "layers": random_layers(rng, vocab_size, num_hiddens, 2),
        "W_hq": rng.normal(0, 0.3, (num_hiddens, vocab_size)).astype(np.float32),
        "b_q": rng.normal(0, 0.3, (vocab_size,)).astype(np.float32),
    }


def language_model(X: np.ndarray, w: dict) -> np.ndarray:
    """Token windows X (batch_size, num_steps) -> logits (batch_size, num_steps, vocab_size)."""
    one_hot = np.eye(len(w["b_q"]), dtype=np.float32)[X.T]  # (num_steps, batch_size, vocab)
    layer = rnn_layer if w["kind"] == "scratch" else gru_layer
    return output_layer(stacked(layer, one_hot, w["layers"])[0], w["W_hq"], w["b_q"])
