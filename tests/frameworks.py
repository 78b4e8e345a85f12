"""One adapter per framework: what the model tests need to know that differs between them.

The model tests are written once and run once per framework, as Keras runs one suite per
backend: the ``fw`` fixture (conftest.py) hands them the adapter of a framework that is
installed. An adapter turns NumPy arrays into tensors and back, builds the concise blocks
(their signatures differ), copies the NumPy reference's weights into the framework's layouts,
lists a model's parameters and, for the lockstep tests, drives d2l 1.0.3's own step.
"""

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest

FRAMEWORKS = ("torch", "tensorflow", "mxnet")


def load(name):
    """The adapter of framework ``name``; the test is skipped when it is not installed."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed in this environment")
    return {"torch": Torch, "tensorflow": TensorFlow, "mxnet": MXNet}[name]()


def import_d2l(module):
    """d2l 1.0.3's ``d2l.<module>``; its torchvision import is satisfied by empty modules."""
    if importlib.util.find_spec("d2l") is None:
        pytest.skip("d2l 1.0.3 is not installed")
    vision = types.ModuleType("torchvision")
    vision.transforms = types.ModuleType("torchvision.transforms")
    sys.modules.setdefault("torchvision", vision)
    sys.modules.setdefault("torchvision.transforms", vision.transforms)
    return importlib.import_module(f"d2l.{module}")


def as_array(a):
    """A NumPy array, floats as float32 (the models' dtype), integers as they are."""
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def gate_blocks(p, gates, order):
    """The reference's per-gate matrices stacked in ``order``: (W_x, W_h, b_x, b_h).

    gates "rnn": the plain RNN, whose reference has one bias (the other is zero).
    """
    if gates == "rnn":
        return p["W_xh"], p["W_hh"], p["b_h"], np.zeros_like(p["b_h"])
    W_x = np.concatenate([p[f"W_x{g}"] for g in order], axis=1)  # (d, 3h)
    W_h = np.concatenate([p[f"W_h{g}"] for g in order], axis=1)  # (h, 3h)
    b_x = np.concatenate([p[f"b_x{g}"] for g in order])
    b_h = np.concatenate([p[f"b_h{g}"] for g in order])
    return W_x, W_h, b_x, b_h


class Adapter:
    """What the frameworks share once ``assign(parameter, NumPy array)`` is known."""

    def set_scratch(self, layer, p):
        """An ``RNNScratch`` layer gets the reference layer ``p``'s weights."""
        for name in ("W_xh", "W_hh", "b_h"):
            self.assign(getattr(layer, name), p[name])

    def set_stacked_gates(self, rnn, layers, gates, names):
        """PyTorch's and Gluon's layout: layer k's input weights (gates * h, inputs), its
        gates stacked (r, z, n); ``names``: (W_x, W_h, b_x, b_h)'s, formatted with k."""
        for k, p in enumerate(layers):
            W_x, W_h, b_x, b_h = gate_blocks(p, gates, "rzn")
            for name, value in zip(names, (W_x.T, W_h.T, b_x, b_h), strict=True):
                self.assign(getattr(rnn, name.format(k=k)), value)

    def set_dense(self, model, W, b):
        """The output layer's W (h, q) and b (q,); PyTorch and Gluon store W as (q, h)."""
        self.assign(model.linear.weight, W.T)
        self.assign(model.linear.bias, b)

    def language_model(self, w):
        """The shim's language model with the weights ``w`` of reference_rnn.language_model."""
        layers, (W_hq, b_q) = w["layers"], (w["W_hq"], w["b_q"])
        vocab_size, num_hiddens = W_hq.shape[1], W_hq.shape[0]
        if w["kind"] == "scratch":
            rnn = self.d2l.StackedRNNScratch(vocab_size, num_hiddens, len(layers))
            model = self.d2l.RNNLMScratch(rnn, vocab_size)
            for layer, p in zip(model.rnn.rnns, layers, strict=True):
                self.set_scratch(layer, p)
            self.assign(model.W_hq, W_hq)
            self.assign(model.b_q, b_q)
            return model
        model = self.d2l.RNNLM(self.gru(vocab_size, num_hiddens, len(layers)), vocab_size)
        self.set_concise(model.rnn, layers, "gru")
        model(self.tensor(np.zeros((1, 1), np.int64)))  # creates the lazy output layer
        self.set_dense(model, W_hq, b_q)
        return model


class Torch(Adapter):
    name, book_name = "torch", "pytorch"
    rnn_biases = 2  # the concise RNN's bias vectors: b_ih and b_hh
    token_dtype = "int64"

    def __init__(self):
        import torch

        from d2l_shim import torch as d2l

        self.torch, self.d2l = torch, d2l
        self.native_cpu = torch.device("cpu")

    def tensor(self, a):
        return self.torch.tensor(as_array(a))

    def numpy(self, x):
        return x.detach().cpu().numpy()

    def rnn(self, num_inputs, num_hiddens, lib=None):
        """``lib.RNN`` (default: the shim; or d2l 1.0.3's module), whatever its signature."""
        return (lib or self.d2l).RNN(num_inputs, num_hiddens)

    def gru(self, num_inputs, num_hiddens, num_layers, dropout=0, lib=None):
        return (lib or self.d2l).GRU(num_inputs, num_hiddens, num_layers, dropout=dropout)

    def assign(self, param, value):
        with self.torch.no_grad():
            param.copy_(self.tensor(value))

    def set_concise(self, block, layers, gates):
        names = ("weight_ih_l{k}", "weight_hh_l{k}", "bias_ih_l{k}", "bias_hh_l{k}")
        self.set_stacked_gates(block.rnn, layers, gates, names)

    def initial_state(self, states, kind):
        return self.tensor(np.stack(states))  # (num_layers, batch_size, h)

    def final_states(self, state):
        """The concise block's final state -> one (batch_size, h) array per layer."""
        return list(self.numpy(state))

    def parameters(self, model):
        return {k: self.numpy(v).copy() for k, v in model.named_parameters()}

    # ---- d2l 1.0.3 ----
    def d2l_reference(self):
        return import_d2l("torch")

    def d2l_namespace(self, ref):
        return {"d2l": ref, "torch": self.torch, "nn": self.torch.nn}

    def copy_from_d2l(self, ours, theirs):
        ours.load_state_dict(theirs.state_dict())

    def d2l_step(self, theirs, optim, ref_trainer, batch, clip):
        """One step of d2l's own loop -> (loss, gradient norm before clipping)."""
        loss = theirs.training_step(batch)
        optim.zero_grad()
        loss.backward()
        norm = float(sum((p.grad**2).sum() for p in theirs.parameters()) ** 0.5)
        ref_trainer.clip_gradients(clip, theirs)
        optim.step()
        return float(loss), norm

    def d2l_parameters(self, theirs):
        return [self.numpy(v) for v in theirs.state_dict().values()]


class TensorFlow(Adapter):
    name = book_name = "tensorflow"
    rnn_biases = 1  # SimpleRNN: one bias
    token_dtype = "int64"

    def __init__(self):
        import tensorflow as tf

        from d2l_shim import tensorflow as d2l

        self.tf, self.d2l = tf, d2l
        self.native_cpu = "/CPU:0"

    def tensor(self, a):
        return self.tf.constant(as_array(a))

    def numpy(self, x):
        return np.asarray(x)

    def rnn(self, num_inputs, num_hiddens, lib=None):
        return (lib or self.d2l).RNN(num_hiddens)

    def gru(self, num_inputs, num_hiddens, num_layers, dropout=0, lib=None):
        return (lib or self.d2l).GRU(num_hiddens, num_layers, dropout=dropout)

    def assign(self, variable, value):
        variable.assign(as_array(value))

    def set_concise(self, block, layers, gates):
        """Keras cells (GRU: reset_after): kernels (d, 3h) and (h, 3h), gates (z, r, n); the
        GRU's bias (2, 3h) holds the input biases, then the recurrent ones."""
        block(self.tf.zeros((1, 1, layers[0]["W_xh" if gates == "rnn" else "W_xz"].shape[0])))
        cells = [block.rnn.cell] if gates == "rnn" else block.rnn.cell.cells
        for cell, p in zip(cells, layers, strict=True):
            W_x, W_h, b_x, b_h = gate_blocks(p, gates, "zrn")
            cell.set_weights([W_x, W_h, b_x if gates == "rnn" else np.stack([b_x, b_h])])

    def set_dense(self, model, W, b):
        model.linear.set_weights([W, b])  # Dense: (in, out)

    def initial_state(self, states, kind):
        return [self.tf.constant(h) for h in states]

    def final_states(self, state):
        if not isinstance(state, list):  # RNN: one tensor
            state = [state]
        for H in state:  # each a tensor, not a list around one (Keras 3's stacked cells)
            assert self.tf.is_tensor(H), f"a layer's state is {type(H).__name__}, not a tensor"
        return [self.numpy(H) for H in state]

    def parameters(self, model):
        return {f"{i}:{v.name}": v.numpy().copy() for i, v in enumerate(model.trainable_variables)}

    # ---- d2l 1.0.3 ----
    def d2l_reference(self):
        import keras

        if int(keras.__version__.split(".")[0]) >= 3:
            pytest.skip(
                f"d2l 1.0.3 runs on Keras 2 only (time_major=True, an integer lr), "
                f"not on Keras {keras.__version__}"
            )
        return import_d2l("tensorflow")

    def d2l_namespace(self, ref):
        return {"d2l": ref, "tf": self.tf}

    def copy_from_d2l(self, ours, theirs):
        for mine, other in zip(ours.trainable_variables, theirs.trainable_variables, strict=True):
            mine.assign(other)

    def d2l_step(self, theirs, optim, ref_trainer, batch, clip):
        with self.tf.GradientTape() as tape:
            loss = theirs.training_step(batch)
        grads = tape.gradient(loss, theirs.trainable_variables)
        norm = float(self.tf.linalg.global_norm(grads))
        grads = ref_trainer.clip_gradients(clip, grads)
        optim.apply_gradients(zip(grads, theirs.trainable_variables, strict=True))
        return float(loss), norm

    def d2l_parameters(self, theirs):
        return [v.numpy() for v in theirs.trainable_variables]


class MXNet(Adapter):
    name = book_name = "mxnet"
    rnn_biases = 2
    token_dtype = "int32"

    def __init__(self):
        import mxnet as mx

        from d2l_shim import mxnet as d2l

        self.mx, self.d2l = mx, d2l
        self.native_cpu = mx.cpu()

    def tensor(self, a):
        a = as_array(a)
        return self.mx.np.array(a, dtype="int32" if a.dtype.kind == "i" else a.dtype)

    def numpy(self, x):
        return x.asnumpy()

    def rnn(self, num_inputs, num_hiddens, lib=None):
        return (lib or self.d2l).RNN(num_hiddens)

    def gru(self, num_inputs, num_hiddens, num_layers, dropout=0, lib=None):
        return (lib or self.d2l).GRU(num_hiddens, num_layers, dropout=dropout)

    def assign(self, param, value):
        param.set_data(self.tensor(value))

    def set_concise(self, block, layers, gates):
        block.initialize()
        num_inputs = layers[0]["W_xh" if gates == "rnn" else "W_xr"].shape[0]
        block(self.mx.np.zeros((1, 1, num_inputs)))  # create the lazy weights
        names = ("l{k}_i2h_weight", "l{k}_h2h_weight", "l{k}_i2h_bias", "l{k}_h2h_bias")
        self.set_stacked_gates(block.rnn, layers, gates, names)

    def initial_state(self, states, kind):
        H = self.mx.np.array(np.stack(states))  # (num_layers, batch_size, h)
        return H if kind == "rnn" else [H]  # the GRU's state: Gluon's list

    def final_states(self, state):
        if isinstance(state, list):  # GRU: Gluon's list around one (num_layers, batch, h)
            (state,) = state
        return list(self.numpy(state).reshape(-1, *state.shape[-2:]))

    def parameters(self, model):
        return {k: p.data().asnumpy().copy() for k, p in model.collect_params().items()}

    # ---- d2l 1.0.3 ----
    def d2l_reference(self):
        return import_d2l("mxnet")

    def d2l_namespace(self, ref):
        return {"d2l": ref, "np": self.mx.np}

    def d2l_arrays(self, model):
        """The weights of a d2l model in the order of ours (RNNLM: GRU's, then Dense's; the
        scratch model: W_hq, b_q, then each layer's, plain arrays in d2l)."""
        if hasattr(model, "linear"):
            blocks = (model.rnn.rnn, model.linear)
            return [p.data() for block in blocks for p in block._reg_params.values()]
        layers = [getattr(model.rnn, f"rnn{i}") for i in range(model.rnn.num_layers)]
        by_layer = [getattr(layer, n) for layer in layers for n in ("W_xh", "W_hh", "b_h")]
        return [model.W_hq, model.b_q] + by_layer

    def copy_from_d2l(self, ours, theirs):
        params = list(ours.collect_params().values())
        for mine, other in zip(params, self.d2l_arrays(theirs), strict=True):
            mine.set_data(other.copy())

    def d2l_step(self, theirs, optim, ref_trainer, batch, clip):
        with self.mx.autograd.record():
            loss = theirs.training_step(batch)
        loss.backward()
        grads = [a.grad for a in self.d2l_arrays(theirs)]  # d2l's scratch: plain arrays
        norm = float(sum((g * g).sum() for g in grads)) ** 0.5
        ref_trainer.clip_gradients(clip, theirs)
        optim.step(1)
        return float(loss), norm

    def d2l_parameters(self, theirs):
        return [a.asnumpy() for a in self.d2l_arrays(theirs)]
