"""MXNet (Gluon, NumPy interface) half of the shim: only what differs between frameworks.

Every weight is a Gluon ``Parameter`` registered with its block, so ``collect_params()`` sees
all of them and ``gluon.Trainer`` trains all of them (d2l 1.0.3 keeps the stacked scratch
layers in a plain list: only its output layer trains). ``RNNScratch`` and the concise blocks
are hybridized by the trainer; losses stay on the device between the trainer's few read-backs
per epoch.
Token tensors are ``int32``. The concise ``RNN`` uses ``tanh`` like the other frameworks
(d2l's MXNet ``RNN`` keeps Gluon's default, ``relu``).
"""

import sys
import warnings

import mxnet as mx
import numpy as onp
from mxnet import autograd, gluon, init, np, npx
from mxnet.gluon import nn, rnn

from . import _common as core
from ._common import (
    HyperParameters,
    ProgressBoard,
    Vocab,
    add_to_class,
    check_len,
    check_shape,
    glue,
    glue_text,
)

npx.set_np()
d2l = sys.modules[__name__]
_TINY = float(onp.finfo(onp.float32).tiny)  # 1.18e-38

__all__ = [
    "HyperParameters", "ProgressBoard", "Module", "DataModule", "Classifier", "Trainer",
    "TimeMachine", "Vocab", "RNNScratch", "StackedRNNScratch", "RNNLMScratch", "RNN", "GRU",
    "RNNLM", "cpu", "gpu", "num_gpus", "try_gpu", "set_seed", "add_to_class", "check_shape",
    "check_len", "glue", "glue_text",
]  # fmt: skip


# ---- devices and seeds ---------------------------------------------------------------------
def cpu():
    """The CPU context."""
    return mx.cpu()


def num_gpus():
    """How many GPUs MXNet sees."""
    return mx.context.num_gpus()


def gpu(i=0):
    """The context of GPU ``i``; a ValueError when it does not exist."""
    n = num_gpus()
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
        raise ValueError(f"gpu(i={i!r}) : pas de tel GPU, MXNet en voit {n}")
    return mx.gpu(i)


def try_gpu(i=0):
    """``gpu(i)`` if it exists, else ``cpu()``."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def set_seed(seed):
    """Seed Python, NumPy and MXNet (every device)."""
    core.seed_python_and_numpy(seed)
    mx.random.seed(seed)


def _initialize(block, ctx=None):
    """Initialize the parameters of ``block`` not initialized yet (others keep their values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already initialized, ignoring"
        block.initialize(ctx=ctx)


# ---- base classes --------------------------------------------------------------------------
class Module(nn.Block, core.ModuleBase):
    """The base class of models: a Gluon ``Block`` with d2l's training hooks.

    Hyperparameters are checked as they are saved (``ModuleBase.check_hyperparameters``).
    """

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)  # Gluon's own arguments
        self.save_hyperparameters(ignore=("prefix", "params"))
        self.board = self.make_board()

    def forward(self, X):
        assert hasattr(self, "net"), "Neural network is defined"
        return self.net(X)

    def loss(self, y_hat, y):
        raise NotImplementedError

    def configure_optimizers(self):
        # step(1) on a mean loss: w <- w - lr * grad, as d2l
        return gluon.Trainer(self.collect_params(), "sgd", {"learning_rate": self.lr})

    def context(self):
        """The context of the model's parameters (the CPU when it has none)."""
        for param in self.collect_params().values():
            return param.list_ctx()[0]
        return cpu()


class DataModule(core.DataModule):
    """Core data module whose batches are MXNet arrays (``int32`` tokens, ``float32`` else)."""

    @staticmethod
    def to_tensor(array):
        return np.array(array, dtype="int32" if array.dtype.kind in "iu" else "float32")


class TimeMachine(core.TimeMachine, DataModule):
    """The Time Machine as character windows, batches of MXNet arrays."""


class Classifier(Module):
    """The base class of classification models."""

    def loss(self, Y_hat, Y, averaged=True):
        Y_hat = Y_hat.reshape(-1, Y_hat.shape[-1])  # (n, num_classes)
        # -log softmax(Y_hat)[Y]: MXNet's softmax, forward and backward, is 2-3x faster than its
        # log_softmax on CPU. A probability below float32's smallest normal number counts as
        # that number (a loss of at most 87.3 per example, instead of inf).
        probs = npx.pick(npx.softmax(Y_hat), Y.reshape(-1))  # (n,)
        loss = -np.log(np.maximum(probs, _TINY))  # cross-entropy, (n,)
        return loss.mean() if averaged else loss

    def accuracy(self, Y_hat, Y, averaged=True):
        preds = Y_hat.reshape(-1, Y_hat.shape[-1]).argmax(axis=1)  # (n,)
        compare = (preds.astype(Y.dtype) == Y.reshape(-1)).astype("float32")
        return compare.mean() if averaged else compare


# ---- models from scratch -------------------------------------------------------------------
class RNNScratch(nn.HybridBlock, Module):
    """One RNN layer from scratch.

    inputs (num_steps, batch_size, num_inputs) -> (num_steps outputs, each
    (batch_size, num_hiddens), final state (batch_size, num_hiddens)).

    A ``HybridBlock``: once hybridized (the trainer does it), the loop over the time steps
    runs as one compiled graph, forward and backward, instead of a few hundred small
    operations dispatched one by one from Python. The graph depends on num_steps: a new
    number of steps (1 when predicting) builds a new one.
    """

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W_xh = self.params.get(
            "W_xh", shape=(num_inputs, num_hiddens), init=init.Normal(sigma)
        )
        self.W_hh = self.params.get(
            "W_hh", shape=(num_hiddens, num_hiddens), init=init.Normal(sigma)
        )
        self.b_h = self.params.get("b_h", shape=(num_hiddens,), init=init.Zero())
        self._num_steps = None
        _initialize(self)

    def forward(self, inputs, state=None):
        if state is None:
            state = np.zeros((inputs.shape[1], self.num_hiddens), ctx=inputs.ctx)  # (batch, h)
        elif isinstance(state, tuple | list):  # d2l passes the state as a 1-tuple
            (state,) = state
        if inputs.shape[0] != self._num_steps:  # the graph unrolls num_steps steps
            self._num_steps = inputs.shape[0]
            self._clear_cached_op()
        outputs = super().forward(inputs, state)
        return outputs, outputs[-1]

    def hybrid_forward(self, F, inputs, state, W_xh, W_hh, b_h):
        # fully_connected(X, W.T, b) computes X W + b (cheaper backward pass than np.dot + add).
        # X_t W_xh for all steps at once, then cut into steps by one split (SliceChannel) rather
        # than num_steps slices; the sum below is the legacy element-wise add, whose backward
        # pass is a copy (NumPy's add, which broadcasts, reduces its gradient). ~10 % per step.
        h, steps = self.num_hiddens, self._num_steps
        fc = F.npx.fully_connected
        XW = fc(inputs, W_xh.T, no_bias=True, num_hidden=h, flatten=False)  # (steps, batch, h)
        XW = F.split(XW.as_nd_ndarray(), num_outputs=steps, axis=0, squeeze_axis=True)
        XW = [XW] if steps == 1 else XW  # split into one part returns that part
        W_hh_T = W_hh.T
        outputs = []
        for t in range(steps):
            HW = fc(state, W_hh_T, b_h, num_hidden=h).as_nd_ndarray()  # H_{t-1} W_hh + b_h
            Z = (XW[t] + HW).as_np_ndarray()  # X_t W_xh + H_{t-1} W_hh + b_h
            state = F.npx.activation(Z, act_type="tanh")  # H_t = tanh(Z)
            outputs.append(state)
        return outputs


class StackedRNNScratch(d2l.Module):
    """RNN à num_layers couches, implémenté à partir de RNNScratch.

    Entrées (num_steps, batch_size, num_inputs) ; sorties (num_steps,
    batch_size, num_hiddens) et liste de num_layers états (batch_size,
    num_hiddens).
    """

    def __init__(self, num_inputs, num_hiddens, num_layers, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        # nn.Sequential enregistre les couches comme blocs enfants : leurs
        # paramètres sont collectés, donc entraînés
        self.rnns = nn.Sequential()
        for i in range(num_layers):
            # couche 1 : W_xh (d, h) ; couches 2 à L : W_xh (h, h)
            self.rnns.add(d2l.RNNScratch(num_inputs if i == 0 else num_hiddens, num_hiddens, sigma))

    def forward(self, inputs, Hs=None):
        if Hs is None:  # H_0^(l) = 0, créé par chaque couche
            Hs = [None] * self.num_layers
        outputs, new_Hs = inputs, []  # H_t^(0) = X_t
        for layer, H in zip(self.rnns, Hs, strict=True):
            # H_t^(l) = tanh(H_t^(l-1) W_xh + H_{t-1}^(l) W_hh + b_h)
            outputs, H = layer(outputs, H)  # num_steps x (batch_size, h)
            outputs = np.stack(outputs, 0)  # (num_steps, batch_size, h)
            new_Hs.append(H)  # (batch_size, h)
        return outputs, new_Hs


class RNNLMScratch(core.LanguageModelBase, Classifier):
    """A character language model around any recurrent block.

    X (batch_size, num_steps) token indices -> (batch_size, num_steps, vocab_size) logits.
    """

    def __init__(self, rnn, vocab_size, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.init_params()

    def init_params(self):
        shape = (self.rnn.num_hiddens, self.vocab_size)
        self.W_hq = self.params.get("W_hq", shape=shape, init=init.Normal(self.rnn.sigma))
        self.b_q = self.params.get("b_q", shape=(self.vocab_size,), init=init.Zero())
        _initialize(self)

    def one_hot(self, X):
        return npx.one_hot(X.T, self.vocab_size)  # (num_steps, batch_size, vocab_size)

    def output_layer(self, rnn_outputs):
        if not isinstance(rnn_outputs, np.ndarray):  # a list of num_steps (batch_size, h)
            rnn_outputs = np.stack(rnn_outputs)  # (num_steps, batch_size, num_hiddens)
        ctx = rnn_outputs.ctx
        W_hq, b_q = self.W_hq.data(ctx), self.b_q.data(ctx)
        # O_t = H_t W_hq + b_q, all steps at once (fully_connected: cheaper than np.dot + add)
        outputs = npx.fully_connected(
            rnn_outputs, W_hq.T, b_q, num_hidden=self.vocab_size, flatten=False
        )
        return outputs.swapaxes(0, 1)  # (batch_size, num_steps, vocab_size)

    def forward(self, X, state=None):
        rnn_outputs, _ = self.rnn(self.one_hot(X), state)
        return self.output_layer(rnn_outputs)

    def token_tensor(self, index, device):
        if device is None:
            device = self.context()
        elif not isinstance(device, mx.Context) or (
            device.device_type == "gpu" and device.device_id >= num_gpus()
        ):
            raise core.device_error(device, "MXNet", "mx.cpu() ou mx.gpu(0)", num_gpus())
        return np.array([[index]], ctx=device, dtype="int32")  # (1, 1)

    def argmax_token(self, Y):
        return int(Y.argmax(axis=2).reshape(-1)[0].item())


# ---- concise models ------------------------------------------------------------------------
class RNN(Module):
    """One RNN layer with Gluon (tanh). inputs (num_steps, batch_size, num_inputs)."""

    def __init__(self, num_hiddens):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = rnn.RNN(num_hiddens, activation="tanh")

    def forward(self, inputs, H=None):
        if H is None:
            (H,) = self.rnn.begin_state(inputs.shape[1], ctx=inputs.ctx)  # (layers, batch, h)
        outputs, (H,) = self.rnn(inputs, (H,))  # outputs: (num_steps, batch_size, h)
        return outputs, H


class GRU(d2l.Module):
    """GRU multicouche (rnn.GRU).

    Entrées (num_steps, batch_size, num_inputs) ; sorties (num_steps,
    batch_size, num_hiddens) et état [(num_layers, batch_size, num_hiddens)].
    """

    def __init__(self, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = rnn.GRU(num_hiddens, num_layers, dropout=dropout)

    def forward(self, inputs, H=None):
        if H is None:  # H_0^(l) = 0 pour chaque couche l
            H = self.rnn.begin_state(inputs.shape[1], ctx=inputs.ctx)
        # outputs : H_t^(L) pour chaque pas t ; H : H_T^(l) pour chaque l
        outputs, H = self.rnn(inputs, H)  # (num_steps, batch_size, h)
        return outputs, H


class RNNLM(RNNLMScratch):
    """The language model with Gluon layers: any recurrent block, a dense output layer."""

    def init_params(self):
        self.linear = nn.Dense(self.vocab_size, flatten=False)
        _initialize(self)
        self(np.zeros((1, 1), dtype="int32", ctx=self.context()))  # lazy weights made: counts work

    def output_layer(self, hiddens):
        return self.linear(hiddens).swapaxes(0, 1)  # (batch_size, num_steps, vocab_size)


# ---- trainer -------------------------------------------------------------------------------
class Trainer(core.TrainerBase):
    """The core's loop with MXNet steps: autograd, global-norm clipping, Gluon SGD; for
    ``grad_norm_groups`` see ``TrainerBase``."""

    framework = "mxnet"

    def layer_parameters(self, value):
        if isinstance(value, nn.Block):
            return [p for p in value.collect_params().values() if p.grad_req != "null"]
        return None

    def is_parameter(self, value):
        return isinstance(value, gluon.Parameter)

    def model_parameters(self, model):
        return [p for p in model.collect_params().values() if p.grad_req != "null"]

    def group_norms(self):
        """The L2 norm of each group's gradients, left on the device (MXNet's engine orders
        these reads before the in-place clipping that follows)."""
        norms = []
        for _, params in self.norm_groups:
            grads = [p.grad(self.device) for p in params]
            norms.append(np.sqrt(sum((g * g).sum() for g in grads)))
        return tuple(norms)

    def select_device(self, num_gpus):
        if num_gpus == 0:
            return cpu(), "cpu"
        if d2l.num_gpus() > 0:
            return gpu(0), "gpu(0)"
        return cpu(), f"cpu (num_gpus={num_gpus} demandé, mais MXNet ne voit aucun GPU)"

    def prepare_batch(self, batch):
        return [a.as_in_ctx(self.device) for a in batch]

    def prepare_model(self, model):
        """Put every parameter on the device, hybridize, create lazy weights on a dummy batch."""
        _initialize(model, ctx=self.device)
        model.collect_params().reset_ctx(self.device)
        with warnings.catch_warnings():  # the chapter's nn.Sequential of scratch layers is fine
            warnings.filterwarnings("ignore", "All children of this Sequential", UserWarning)
            model.hybridize(static_alloc=True)  # the HybridBlocks inside (RNNScratch, Gluon's)
        loader = self.train_dataloader
        if hasattr(loader, "arrays"):  # the core's BatchLoader: one example, no RNG used
            model(*self.prepare_batch([loader.convert(a[:1]) for a in loader.arrays])[:-1])
        self.params = list(model.collect_params().values())

    def train_step(self, batch):
        with autograd.record():
            loss = self.model.training_step(batch)
        loss.backward()
        if self.norm_groups:  # before clipping
            self.step_norms = self.group_norms()
        if self.gradient_clip_val > 0:
            self.clip_gradients(self.gradient_clip_val, self.model)
        self.optim.step(1)  # the loss is a mean already
        return loss

    def val_step(self, batch):
        return self.model.validation_step(batch)

    def clip_gradients(self, grad_clip_val, model):
        """Rescale all gradients together so that their global norm is <= grad_clip_val."""
        grads = [p.grad(self.device) for p in self.params]
        norm = np.sqrt(sum((g * g).sum() for g in grads))  # stays on the device
        scale = np.minimum(grad_clip_val / norm, 1.0)
        for g in grads:
            g *= scale

    def to_numpy(self, losses):
        return np.stack(losses).asnumpy()  # one read-back for all of them
