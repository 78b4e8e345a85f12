"""TensorFlow half of the shim: only what differs from the framework-free core.

``from d2l_shim import tensorflow as d2l`` gives the names of d2l 1.0.3 that the deep-RNN
section uses. Models take time-major inputs ``(num_steps, batch_size, ...)`` as in d2l; the
training loop lives in ``d2l_shim._common.training``. The training and validation steps are
compiled with ``tf.function`` and kept on the model (one trace per batch shape), so memory
stays flat over epochs and ``fit`` calls.
Keras layers are used batch-major with transposes around them (no ``time_major=True``), a form
Keras 3 keeps.
"""

import contextlib
import functools
import inspect
import logging

import tensorflow as tf

from . import _common
from ._common import (
    HyperParameters,
    LanguageModelBase,
    ModuleBase,
    ProgressBoard,
    TrainerBase,
    Vocab,
    add_to_class,
    check_len,
    check_shape,
    glue,
    glue_text,
    seed_python_and_numpy,
)

# fmt: off
__all__ = [
    "HyperParameters", "ProgressBoard", "Module", "DataModule", "Classifier", "Trainer",
    "TimeMachine", "Vocab", "RNNScratch", "StackedRNNScratch", "RNNLMScratch", "RNN", "GRU",
    "RNNLM", "cpu", "gpu", "num_gpus", "try_gpu", "set_seed", "add_to_class", "check_shape",
    "check_len", "glue", "glue_text",
]
# fmt: on


# ---- devices and seeds -------------------------------------------------------------------
class _Device(str):
    """A TensorFlow device name ('/CPU:0', '/GPU:0'), also usable as ``with d2l.cpu():``."""

    def __enter__(self):
        self._scope = tf.device(self)
        return self._scope.__enter__()

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)


def cpu():
    """The CPU device."""
    return _Device("/CPU:0")


def num_gpus():
    """The number of GPUs TensorFlow sees."""
    return len(tf.config.list_physical_devices("GPU"))


def gpu(i=0):
    """The GPU number ``i``; a ValueError if TensorFlow does not see it."""
    n = num_gpus()
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
        raise ValueError(f"gpu({i!r}) : i doit être dans [0, {n}) ; TensorFlow voit {n} GPU")
    return _Device(f"/GPU:{i}")


def try_gpu(i=0):
    """``gpu(i)`` if it exists, else ``cpu()``."""
    return gpu(i) if isinstance(i, int) and 0 <= i < num_gpus() else cpu()


def set_seed(seed):
    """Seed Python, NumPy and TensorFlow: two CPU runs then give the same losses."""
    seed_python_and_numpy(seed)
    tf.keras.utils.set_random_seed(seed)  # Python, NumPy and tf.random


def _as_device(device):
    """``None`` or a device name ('/CPU:0', '/GPU:1', 'gpu:0'...) -> _Device or None."""
    if device is None:
        return None
    try:
        spec = tf.DeviceSpec.from_string(device)
    except (ValueError, TypeError, AttributeError):
        spec = None
    kind = spec.device_type.upper() if spec is not None and spec.device_type else None
    index = (spec.device_index or 0) if spec is not None else 0
    if kind == "CPU" and index == 0:
        return cpu()
    if kind == "GPU" and index < num_gpus():
        return gpu(index)
    raise _common.device_error(device, "TensorFlow", "'/CPU:0' ou '/GPU:0'", num_gpus())


# ---- base classes ------------------------------------------------------------------------
def _keep_d2l_behaviour(model):
    """Undo what Keras 3's ``Model.__init__`` does that a d2l model does not expect.

    Keras 3 sets ``model.loss = None``, which would hide the class's ``loss`` method. It also
    builds a layer before its first call by tracing ``call`` symbolically (with extra
    arguments our ``forward`` does not take, then a warning in the cell's output): our models
    create their weights in ``__init__``, their Keras layers build themselves when called, so
    the model counts as built from the start. Keras 2 does neither: nothing changes there.
    """
    vars(model).pop("loss", None)
    model.built = True


@functools.cache
def _state_names(forward):
    """The names of ``forward(self, inputs, ...)``'s parameters after the inputs (cached)."""
    return tuple(inspect.signature(forward).parameters)[2:]


class Module(tf.keras.Model, ModuleBase):
    """The base class of models: a ``tf.keras.Model`` with d2l's training hooks.

    ``self.training`` (None, True or False), when set, is passed to Keras as ``training=``,
    so that dropout layers nested anywhere below follow it.
    """

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        _keep_d2l_behaviour(self)
        self.save_hyperparameters()
        self.board = self.make_board()
        self.training = None

    def __call__(self, X, *args, **kwargs):
        if self.training is not None and "training" not in kwargs:
            kwargs["training"] = self.training
        names = _state_names(type(self).forward)
        if len(args) <= len(names):  # Keras 3.0-3.3 refuse a positional None: pass by name
            kwargs.update(zip(names, args, strict=False))
            args = ()
        return super().__call__(X, *args, **kwargs)

    def call(self, X, *args, training=None, **kwargs):
        return self.forward(X, *args, **kwargs)

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        assert hasattr(self, "net"), "Neural network is defined"
        return self.net(X)

    def configure_optimizers(self):
        return tf.keras.optimizers.SGD(float(self.lr))  # Keras 3: a float, never lr=2


class Classifier(Module):
    """The base class of classification models."""

    def loss(self, Y_hat, Y, averaged=True):
        """Cross-entropy over the last axis of ``Y_hat``, Y holding class indices."""
        Y_hat = tf.reshape(Y_hat, (-1, Y_hat.shape[-1]))  # (batch_size * num_steps, vocab_size)
        Y = tf.reshape(Y, (-1,))  # (batch_size * num_steps,)
        l = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=Y_hat)  # noqa: E741
        return tf.reduce_mean(l) if averaged else l

    def accuracy(self, Y_hat, Y, averaged=True):
        """The fraction of correct predictions."""
        preds = tf.argmax(tf.reshape(Y_hat, (-1, Y_hat.shape[-1])), axis=1)
        compare = tf.cast(tf.cast(preds, Y.dtype) == tf.reshape(Y, (-1,)), tf.float32)
        return tf.reduce_mean(compare) if averaged else compare


class DataModule(_common.DataModule):
    """The base class of data: batches of NumPy arrays become int64 tensors."""

    to_tensor = staticmethod(tf.convert_to_tensor)


class TimeMachine(_common.TimeMachine, DataModule):
    """The Time Machine as character windows; X, Y: (batch_size, num_steps) int64."""


# ---- recurrent models --------------------------------------------------------------------
def _weight(layer, name, shape, sigma=None):
    """A trainable weight, N(0, sigma^2) (zeros without sigma), that Keras 2 and 3 both track."""
    init = "zeros" if sigma is None else tf.keras.initializers.RandomNormal(stddev=sigma)
    return layer.add_weight(name=name, shape=shape, initializer=init)


class RNNScratch(Module):
    """The RNN model implemented from scratch.

    inputs: (num_steps, batch_size, num_inputs) -> num_steps outputs of shape
    (batch_size, num_hiddens), and the final state (batch_size, num_hiddens).
    """

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W_xh = _weight(self, "W_xh", (num_inputs, num_hiddens), sigma)
        self.W_hh = _weight(self, "W_hh", (num_hiddens, num_hiddens), sigma)
        self.b_h = _weight(self, "b_h", (num_hiddens,))

    def forward(self, inputs, state=None):
        if state is None:
            state = tf.zeros((inputs.shape[1], self.num_hiddens))  # (batch_size, num_hiddens)
        elif isinstance(state, (tuple, list)):  # d2l passes the state as a 1-tuple
            (state,) = state
        outputs = []
        for X in tf.unstack(inputs):  # X_t: (batch_size, num_inputs); a Python loop in tf.function
            # H_t = phi(X_t W_xh + H_{t-1} W_hh + b_h)
            state = tf.tanh(X @ self.W_xh + state @ self.W_hh + self.b_h)
            outputs.append(state)
        return outputs, state


class StackedRNNScratch(Module):
    """RNN à num_layers couches, implémenté à partir de RNNScratch.

    Entrées (num_steps, batch_size, num_inputs) ; sorties (num_steps,
    batch_size, num_hiddens) et liste de num_layers états (batch_size,
    num_hiddens).
    """

    def __init__(self, num_inputs, num_hiddens, num_layers, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        # couche 1 : W_xh (d, h) ; couches 2 à L : W_xh (h, h)
        self.rnns = [
            RNNScratch(num_inputs if i == 0 else num_hiddens, num_hiddens, sigma)
            for i in range(num_layers)
        ]

    def forward(self, inputs, Hs=None):
        if Hs is None:  # H_0^(l) = 0, créé par chaque couche
            Hs = [None] * self.num_layers
        outputs, new_Hs = inputs, []  # H_t^(0) = X_t
        for layer, H in zip(self.rnns, Hs, strict=True):
            # H_t^(l) = tanh(H_t^(l-1) W_xh + H_{t-1}^(l) W_hh + b_h)
            outputs, H = layer(outputs, H)  # num_steps x (batch_size, h)
            outputs = tf.stack(outputs, 0)  # (num_steps, batch_size, h)
            new_Hs.append(H)  # (batch_size, h)
        return outputs, new_Hs


def _stacked(rnn_outputs):
    """A list of num_steps (batch_size, h) tensors, or a tensor -> (num_steps, batch_size, h)."""
    return tf.stack(rnn_outputs) if isinstance(rnn_outputs, (list, tuple)) else rnn_outputs


class RNNLMScratch(LanguageModelBase, Classifier):
    """The RNN-based language model implemented from scratch.

    X: (batch_size, num_steps) token indices -> logits (batch_size, num_steps, vocab_size).
    ``predict`` generates greedily; characters outside the vocabulary map to ``<unk>``.
    """

    def __init__(self, rnn, vocab_size, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.init_params()

    def init_params(self):
        sigma, h = self.rnn.sigma, self.rnn.num_hiddens
        self.W_hq = _weight(self, "W_hq", (h, self.vocab_size), sigma)
        self.b_q = _weight(self, "b_q", (self.vocab_size,))

    def one_hot(self, X):
        return tf.one_hot(tf.transpose(X), self.vocab_size)  # (num_steps, batch, vocab) float32

    def output_layer(self, rnn_outputs):
        outputs = _stacked(rnn_outputs) @ self.W_hq + self.b_q  # O_t = H_t W_hq + b_q
        return tf.transpose(outputs, (1, 0, 2))  # (batch_size, num_steps, vocab_size)

    def forward(self, X, state=None):
        rnn_outputs, _ = self.rnn(self.one_hot(X), state)
        return self.output_layer(rnn_outputs)  # (batch_size, num_steps, vocab_size)

    def token_tensor(self, index, device):
        return tf.constant([[index]])  # (1, 1)

    def argmax_token(self, Y):
        return int(tf.argmax(Y, axis=2)[0, 0])

    def predict(self, prefix, num_preds, vocab, device=None):
        """Continue ``prefix`` by ``num_preds`` characters (inference mode, dropout off)."""
        device = _as_device(device) or try_gpu()
        with tf.device(device):
            return super().predict(prefix, num_preds, vocab, device)


class RNN(Module):
    """The RNN model implemented with ``SimpleRNN`` (one layer).

    inputs: (num_steps, batch_size, num_inputs) -> outputs (num_steps, batch_size,
    num_hiddens) and the state (batch_size, num_hiddens).
    """

    def __init__(self, num_hiddens):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = tf.keras.layers.SimpleRNN(num_hiddens, return_sequences=True, return_state=True)

    def forward(self, inputs, H=None):
        X = tf.transpose(inputs, (1, 0, 2))  # (batch_size, num_steps, num_inputs)
        outputs, H = self.rnn(X, initial_state=H)
        return tf.transpose(outputs, (1, 0, 2)), H  # (num_steps, batch_size, num_hiddens)


class LeanGRUCell(tf.keras.layers.GRUCell):
    """La GRUCell de Keras, avec un pas calculé en moins d'opérations.

    Mêmes poids, mêmes équations (reset_after=True). Le pas de Keras 3
    découpe le biais et tranche le produit récurrent à chaque pas, ce qui le
    rend plus lent que celui de Keras 2. Avec abandon, le pas de Keras
    s'applique.
    """

    def call(self, inputs, states, training=None):
        if self.dropout or self.recurrent_dropout or not self.use_bias or not self.reset_after:
            return super().call(inputs, states, training=training)
        H = tf.nest.flatten(states)[0]  # H_{t-1} : (batch_size, h)
        b_x, b_h = tf.unstack(self.bias)  # 2 biais de forme (3h,)
        X = tf.matmul(inputs, self.kernel) + b_x  # (batch_size, 3h)
        U = tf.matmul(H, self.recurrent_kernel) + b_h  # (batch_size, 3h)
        x_z, x_r, x_h = tf.split(X, 3, axis=-1)
        h_z, h_r, h_h = tf.split(U, 3, axis=-1)
        Z = self.recurrent_activation(x_z + h_z)  # porte de mise à jour
        R = self.recurrent_activation(x_r + h_r)  # porte de réinitialisation
        H_tilde = self.activation(x_h + R * h_h)  # état candidat
        H = Z * H + (1 - Z) * H_tilde
        return H, [H] if tf.nest.is_nested(states) else H


class GRU(Module):
    """GRU multicouche (GRUCell empilées dans tf.keras.layers.RNN).

    Entrées (num_steps, batch_size, num_inputs) ; sorties (num_steps,
    batch_size, num_hiddens) et liste de num_layers états (batch_size,
    num_hiddens).
    """

    def __init__(self, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.save_hyperparameters()
        cells = [LeanGRUCell(num_hiddens, dropout=dropout) for _ in range(num_layers)]
        self.rnn = tf.keras.layers.RNN(cells, return_sequences=True, return_state=True)

    def forward(self, inputs, Hs=None):
        X = tf.transpose(inputs, (1, 0, 2))  # (batch_size, num_steps, d)
        # outputs : H_t^(L) pour chaque pas t ; Hs : H_T^(l) pour chaque l
        outputs, *Hs = self.rnn(X, initial_state=Hs)
        Hs = tf.nest.flatten(Hs)  # Keras 3 renvoie [[H^(1)], [H^(2)], ...]
        outputs = tf.transpose(outputs, (1, 0, 2))  # (num_steps, n, h)
        return outputs, Hs


class RNNLM(RNNLMScratch):
    """The RNN-based language model with a dense output layer (any recurrent block)."""

    def init_params(self):
        self.linear = tf.keras.layers.Dense(self.vocab_size)

    def output_layer(self, hiddens):
        return tf.transpose(self.linear(_stacked(hiddens)), (1, 0, 2))  # (batch, steps, vocab)


# ---- training ----------------------------------------------------------------------------
def _compile_steps(model, optim, clip, groups=()):
    """The training and validation steps of ``model``, compiled (one trace per batch shape).

    ``groups``: for each gradient-norm group, the indices of its variables in
    ``model.trainable_variables``; the training step returns (loss, their norms before
    clipping).
    """

    def train_step(*batch):
        variables = model.trainable_variables
        with tf.GradientTape() as tape, _mode(model, training=True):
            loss = model.training_step(batch)
        grads = tape.gradient(loss, variables)
        norms = []
        for indices in groups:  # before clipping
            present = [grads[i] for i in indices if grads[i] is not None]
            norms.append(tf.linalg.global_norm(present) if present else tf.zeros(()))
        if clip > 0:  # rescale all gradients together: global L2 norm <= clip
            grads = tf.clip_by_global_norm(grads, clip)[0]
        optim.apply_gradients(zip(grads, variables, strict=True))
        return loss, tuple(norms)

    def val_step(*batch):
        with _mode(model, training=False):
            return model.validation_step(batch)

    return tf.function(train_step, autograph=False), tf.function(val_step, autograph=False)


class _OwnStepsRetracing(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" warning about our own steps.

    TensorFlow counts traces per Python code object, not per compiled function: every model's
    steps share ``train_step``'s and ``val_step``'s code, so a chapter that trains six models
    (two traces each) gets the warning although no step retraces (each traces once per batch
    shape: tests/test_models_tensorflow.py). The warning names the function: a reader's own
    functions, and every other warning, pass.
    """

    def filter(self, record):
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "_compile_steps" in message)


tf.get_logger().addFilter(_OwnStepsRetracing())


@contextlib.contextmanager
def _mode(model, training):
    """Set ``model.training`` (read when tracing: Keras passes it on as ``training=``)."""
    previous, model.training = model.training, training
    try:
        yield
    finally:
        model.training = previous


class Trainer(TrainerBase):
    """Fit a model with SGD: ``Trainer(max_epochs, num_gpus=0, gradient_clip_val=0,
    grad_norm_groups=None)``; see ``TrainerBase``.

    The steps are compiled with ``tf.function`` and kept on the model: they trace once per
    batch shape (full batches, the last partial one), neither again at each epoch nor at the
    next ``fit`` of the same model with an optimizer of the same configuration, clipping and
    gradient-norm groups (the optimizer's state is then reset to zero, as a new one), so
    memory stays flat. The groups' norms are computed inside the compiled step.
    """

    framework = "tensorflow"

    def layer_parameters(self, value):
        if isinstance(value, tf.Variable) or self.is_parameter(value):
            return None
        variables = getattr(value, "trainable_variables", None)
        return None if variables is None or callable(variables) else list(variables)

    def is_parameter(self, value):
        # tf.Variable, or a Keras 3 variable (not a tf.Variable subclass)
        return isinstance(value, tf.Variable) or (
            hasattr(value, "assign") and hasattr(value, "trainable") and hasattr(value, "shape")
        )

    def model_parameters(self, model):
        return list(model.trainable_variables)

    def group_indices(self):
        """Each group as the indices of its variables in the model's trainable_variables."""
        position = {id(v): i for i, v in enumerate(self.model.trainable_variables)}
        return tuple(tuple(position[id(v)] for v in params) for _, params in self.norm_groups)

    def select_device(self, num_gpus):
        if num_gpus == 0:
            return cpu(), "cpu"
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return cpu(), f"cpu (num_gpus={num_gpus} demandé, mais TensorFlow ne voit aucun GPU)"
        return gpu(0), f"{gpu(0)} ({gpus[0].name})"

    def prepare_model(self, model):
        loader = self.train_dataloader
        arrays = getattr(loader, "arrays", None)
        sample = [loader.convert(a[:1]) for a in arrays] if arrays else next(iter(loader))
        with tf.device(self.device):  # create lazy weights before the optimizer sees them
            model(*sample[:-1])
        self.train_fn = self.val_fn = None

    def compile_steps(self):
        """Reuse the model's compiled steps when the optimizer is configured alike."""
        model, optim = self.model, self.optim
        with tf.device(self.device):  # the optimizer's variables, outside the trace
            optim.build(model.trainable_variables)
        config = {k: v for k, v in optim.get_config().items() if k != "name"}  # sgd, sgd_1...
        groups = self.group_indices()
        key = (type(optim), str(config), self.gradient_clip_val, self.device, groups)
        cached = getattr(model, "_d2l_steps", None)
        if cached is not None and cached[0] == key:
            self.optim = cached[1]
            for old, new in zip(self.optim.variables, optim.variables, strict=True):
                old.assign(new)  # the state of a new optimizer (step 0, initial slots)
        else:
            steps = _compile_steps(model, optim, self.gradient_clip_val, groups)
            cached = (key, optim, *steps)
            object.__setattr__(model, "_d2l_steps", cached)  # not a Keras-tracked attribute
        self.train_fn, self.val_fn = cached[2:]

    def train_step(self, batch):
        if self.train_fn is None:
            self.compile_steps()
        with tf.device(self.device):
            loss, self.step_norms = self.train_fn(*batch)
        return loss

    def val_step(self, batch):
        with tf.device(self.device):
            return self.val_fn(*batch)

    def to_numpy(self, losses):
        return tf.stack(losses).numpy()
