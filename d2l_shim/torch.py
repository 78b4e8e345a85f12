"""PyTorch half of the shim: only what differs from the framework-free core.

``from d2l_shim import torch as d2l`` gives the names of d2l 1.0.3 that the deep-RNN section
uses. Models take time-major inputs ``(num_steps, batch_size, ...)`` as in d2l; the training
loop itself lives in ``d2l_shim._common.training``.
"""

import torch
from torch import nn
from torch.nn import functional as F

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

__all__ = [
    "HyperParameters",
    "ProgressBoard",
    "Module",
    "DataModule",
    "Classifier",
    "Trainer",
    "TimeMachine",
    "Vocab",
    "RNNScratch",
    "StackedRNNScratch",
    "RNNLMScratch",
    "RNN",
    "GRU",
    "RNNLM",
    "cpu",
    "gpu",
    "num_gpus",
    "try_gpu",
    "set_seed",
    "add_to_class",
    "check_shape",
    "check_len",
    "glue",
    "glue_text",
]


# ---- devices and seeds -------------------------------------------------------------------
def cpu():
    """The CPU device."""
    return torch.device("cpu")


def num_gpus():
    """The number of GPUs PyTorch sees."""
    return torch.cuda.device_count()


def gpu(i=0):
    """The GPU number ``i``; a ValueError if PyTorch does not see it."""
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < num_gpus():
        raise ValueError(
            f"gpu({i!r}) : i doit être dans [0, {num_gpus()}) ; PyTorch voit {num_gpus()} GPU"
        )
    return torch.device(f"cuda:{i}")


def try_gpu(i=0):
    """``gpu(i)`` if it exists, else ``cpu()``."""
    return gpu(i) if 0 <= i < num_gpus() else cpu()


def set_seed(seed):
    """Seed Python, NumPy and PyTorch: two CPU runs then give the same losses."""
    seed_python_and_numpy(seed)
    torch.manual_seed(seed)


def _as_device(device):
    """``None`` or an existing PyTorch device (or its name) -> torch.device or None.

    Else a ValueError naming it (PyTorch itself raises an AssertionError for 'cuda:0' when
    it was built without CUDA, and a RuntimeError when it sees no such GPU).
    """
    if device is None or (isinstance(device, torch.device) and device.type == "cpu"):
        return device
    try:
        checked = torch.device(device)
        if checked.type == "cuda" and (checked.index or 0) >= num_gpus():
            raise RuntimeError("no such GPU")
        torch.empty(0, device=checked)  # other kinds (mps, xpu...): can this build use it?
    except (AssertionError, RuntimeError, TypeError):
        raise _common.device_error(device, "PyTorch", "'cpu' ou 'cuda:0'", num_gpus()) from None
    return checked


# ---- base classes ------------------------------------------------------------------------
class Module(nn.Module, ModuleBase):
    """The base class of models: an ``nn.Module`` with d2l's training hooks."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = self.make_board()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        assert hasattr(self, "net"), "Neural network is defined"
        return self.net(X)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Classifier(Module):
    """The base class of classification models."""

    def loss(self, Y_hat, Y, averaged=True):
        """Cross-entropy over the last axis of ``Y_hat``, Y holding class indices."""
        Y_hat = Y_hat.reshape(-1, Y_hat.shape[-1])  # (batch_size * num_steps, vocab_size)
        return F.cross_entropy(Y_hat, Y.reshape(-1), reduction="mean" if averaged else "none")

    def accuracy(self, Y_hat, Y, averaged=True):
        """The fraction of correct predictions."""
        preds = Y_hat.reshape(-1, Y_hat.shape[-1]).argmax(dim=1).type(Y.dtype)
        compare = (preds == Y.reshape(-1)).type(torch.float32)
        return compare.mean() if averaged else compare


class DataModule(_common.DataModule):
    """The base class of data: batches of NumPy arrays become int64 tensors."""

    to_tensor = staticmethod(torch.from_numpy)


class TimeMachine(_common.TimeMachine, DataModule):
    """The Time Machine as character windows; X, Y: (batch_size, num_steps) int64."""


# ---- recurrent models --------------------------------------------------------------------
class RNNScratch(Module):
    """The RNN model implemented from scratch.

    inputs: (num_steps, batch_size, num_inputs) -> num_steps outputs of shape
    (batch_size, num_hiddens), and the final state (batch_size, num_hiddens).
    """

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W_xh = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.W_hh = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))

    def forward(self, inputs, state=None):
        if state is None:
            state = torch.zeros((inputs.shape[1], self.num_hiddens), device=inputs.device)
        elif isinstance(state, (tuple, list)):  # d2l passes the state as a 1-tuple
            (state,) = state
        XW = inputs @ self.W_xh + self.b_h  # (num_steps, batch_size, num_hiddens), all steps
        outputs = []
        for XW_t in XW:
            state = torch.tanh(XW_t + state @ self.W_hh)  # H_t = phi(X_t W_xh + H_{t-1} W_hh + b_h)
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
        self.rnns = nn.Sequential(
            *[
                RNNScratch(num_inputs if i == 0 else num_hiddens, num_hiddens, sigma)
                for i in range(num_layers)
            ]
        )

    def forward(self, inputs, Hs=None):
        if Hs is None:  # H_0^(l) = 0, créé par chaque couche
            Hs = [None] * self.num_layers
        outputs, new_Hs = inputs, []  # H_t^(0) = X_t
        for layer, H in zip(self.rnns, Hs, strict=True):
            # H_t^(l) = tanh(H_t^(l-1) W_xh + H_{t-1}^(l) W_hh + b_h)
            outputs, H = layer(outputs, H)  # num_steps x (batch_size, h)
            outputs = torch.stack(outputs, 0)  # (num_steps, batch_size, h)
            new_Hs.append(H)  # (batch_size, h)
        return outputs, new_Hs


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
        self.W_hq = nn.Parameter(
            torch.randn(self.rnn.num_hiddens, self.vocab_size) * self.rnn.sigma
        )
        self.b_q = nn.Parameter(torch.zeros(self.vocab_size))

    def one_hot(self, X):
        return F.one_hot(X.T, self.vocab_size).type(torch.float32)  # (num_steps, batch, vocab)

    def output_layer(self, rnn_outputs):
        if isinstance(rnn_outputs, (list, tuple)):
            rnn_outputs = torch.stack(rnn_outputs)  # (num_steps, batch_size, num_hiddens)
        return (rnn_outputs @ self.W_hq + self.b_q).swapaxes(0, 1)  # O_t = H_t W_hq + b_q

    def forward(self, X, state=None):
        rnn_outputs, _ = self.rnn(self.one_hot(X), state)
        return self.output_layer(rnn_outputs)  # (batch_size, num_steps, vocab_size)

    def token_tensor(self, index, device):
        return torch.tensor([[index]], device=device)  # (1, 1)

    def argmax_token(self, Y):
        return int(Y.argmax(dim=2).reshape(1))

    def predict(self, prefix, num_preds, vocab, device=None):
        """Continue ``prefix`` by ``num_preds`` characters (dropout off, no gradients)."""
        device = _as_device(device)
        if device is None:
            device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return super().predict(prefix, num_preds, vocab, device)
        finally:
            self.train(was_training)


class RNN(Module):
    """The RNN model implemented with ``nn.RNN`` (one layer).

    inputs: (num_steps, batch_size, num_inputs) -> outputs (num_steps, batch_size,
    num_hiddens) and the state (1, batch_size, num_hiddens).
    """

    def __init__(self, num_inputs, num_hiddens):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = nn.RNN(num_inputs, num_hiddens)

    def forward(self, inputs, H=None):
        return self.rnn(inputs, H)


class GRU(Module):
    """GRU multicouche (nn.GRU).

    Entrées (num_steps, batch_size, num_inputs) ; sorties (num_steps,
    batch_size, num_hiddens) et état (num_layers, batch_size, num_hiddens).
    """

    def __init__(self, num_inputs, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = nn.GRU(num_inputs, num_hiddens, num_layers, dropout=dropout)

    def forward(self, inputs, H=None):
        # outputs : H_t^(L) pour chaque pas t ; H : H_T^(l) pour chaque l
        outputs, H = self.rnn(inputs, H)  # (num_steps, batch_size, h)
        return outputs, H


class RNNLM(RNNLMScratch):
    """The RNN-based language model with a linear output layer (any recurrent block)."""

    def init_params(self):
        self.linear = nn.Linear(self.rnn.num_hiddens, self.vocab_size)

    def output_layer(self, hiddens):
        return self.linear(hiddens).swapaxes(0, 1)  # (batch_size, num_steps, vocab_size)


# ---- training ----------------------------------------------------------------------------
class Trainer(TrainerBase):
    """Fit a model with SGD: ``Trainer(max_epochs, num_gpus=0, gradient_clip_val=0,
    grad_norm_groups=None)``; see ``TrainerBase``."""

    framework = "pytorch"

    def layer_parameters(self, value):
        if isinstance(value, nn.Module):
            return [p for p in value.parameters() if p.requires_grad]
        return None

    def is_parameter(self, value):
        return isinstance(value, torch.Tensor) and value.requires_grad

    def model_parameters(self, model):
        return [p for p in model.parameters() if p.requires_grad]

    def group_norms(self):
        """The L2 norm of each group's gradients (a parameter without gradient counts 0)."""
        norms = []
        for _, params in self.norm_groups:
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                norms.append(torch.zeros((), device=self.device))
                continue
            norms.append(
                torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            )
        return tuple(n.detach().float() for n in norms)

    def select_device(self, num_gpus):
        if num_gpus == 0:
            return cpu(), "cpu"
        if torch.cuda.device_count() == 0:
            return cpu(), f"cpu (num_gpus={num_gpus} demandé, mais PyTorch ne voit aucun GPU)"
        return gpu(0), f"{gpu(0)} ({torch.cuda.get_device_name(0)})"

    def prepare_model(self, model):
        model.to(self.device)
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
            with torch.no_grad():  # create lazy weights before the optimizer sees them
                model(*self.prepare_batch(next(iter(self.train_dataloader)))[:-1])

    def prepare_batch(self, batch):
        return [a.to(self.device, non_blocking=True) for a in batch]

    def clip_gradients(self, grad_clip_val, model):
        """Rescale all gradients together so that their global L2 norm is <= grad_clip_val."""
        params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
        nn.utils.clip_grad_norm_(params, grad_clip_val)  # no read-back to the host

    def train_step(self, batch):
        if not self.model.training:
            self.model.train()
        loss = self.model.training_step(batch)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.norm_groups:  # before clipping; no read-back to the host
            self.step_norms = self.group_norms()
        if self.gradient_clip_val > 0:
            self.clip_gradients(self.gradient_clip_val, self.model)
        self.optim.step()
        return loss.detach()

    def val_step(self, batch):
        if self.model.training:
            self.model.eval()
        with torch.no_grad():
            return self.model.validation_step(batch)

    def to_numpy(self, losses):
        return torch.stack(losses).float().cpu().numpy()
