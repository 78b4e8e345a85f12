"""The training loop, written once. Framework modules supply the steps that differ.

A framework's ``Trainer`` subclasses ``TrainerBase`` and implements:
  ``select_device(num_gpus) -> (device, description)``, ``prepare_model(model)``,
  ``prepare_batch(batch)``, ``train_step(batch) -> loss`` (forward, backward, clipping, update;
  compiled where the framework allows), ``val_step(batch) -> loss`` and
  ``to_numpy(losses) -> np.ndarray``. Losses stay on the device between draws: the loop reads
  them back only when it plots (a few times per epoch), never after each step.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .hyperparams import HyperParameters, capped_epochs, check_positive, check_positive_int
from .plot import XLABEL, ProgressBoard


class ModuleBase(HyperParameters):
    """The framework-free half of ``Module``: steps, metric and plotting.

    ``training_step`` and ``validation_step`` return the loss; the trainer records and plots
    it as ``metric_name`` (``metric`` maps a loss to the plotted value).
    """

    metric_name = "loss"
    positive_ints = ("num_inputs", "num_hiddens", "num_layers", "vocab_size", "num_outputs")

    def check_hyperparameters(self) -> None:
        """Validate the usual hyperparameters, so chapter classes need no checks of their own."""
        hparams = self.hparams
        for name in self.positive_ints:
            if name in hparams:
                check_positive_int(name, hparams[name])
        if "lr" in hparams:
            check_positive("lr", hparams["lr"])
        if "sigma" in hparams:
            check_positive("sigma", hparams["sigma"], allow_zero=True)
        if "dropout" in hparams and check_positive("dropout", hparams["dropout"], True) >= 1:
            raise ValueError(f"dropout doit être dans [0, 1) (reçu : {hparams['dropout']!r})")

    @staticmethod
    def metric(loss: np.ndarray) -> np.ndarray:
        return loss

    def divergence_limit(self) -> tuple[float, str]:
        """The plotted value above which, after the first epoch, training has diverged; why."""
        return math.inf, ""

    def make_board(self) -> ProgressBoard:
        return ProgressBoard(xlabel=XLABEL)

    def training_step(self, batch: Sequence) -> Any:
        return self.loss(self(*batch[:-1]), batch[-1])

    def validation_step(self, batch: Sequence) -> Any:
        return self.loss(self(*batch[:-1]), batch[-1])

    def plot(self, key: str, value: Any, train: bool) -> None:
        """Plot ``value`` at the trainer's current position (as d2l's ``Module.plot``)."""
        assert hasattr(self, "trainer"), "Trainer is not inited"
        trainer = self.trainer
        if train:
            x = trainer.train_batch_idx / trainer.num_train_batches
            n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = trainer.epoch + 1
            n = trainer.num_val_batches / self.plot_valid_per_epoch
        label = ("train_" if train else "val_") + key
        self.board.draw(x, float(np.asarray(value)), label, every_n=int(n))


def device_error(device: Any, framework: str, examples: str, num_gpus: int) -> ValueError:
    """The error of every framework for a device it does not have (``predict(device=...)``)."""
    return ValueError(
        f"device doit être None ou un appareil {framework} existant, comme {examples} "
        f"({num_gpus} GPU visible(s)) (reçu : {device!r})"
    )


class LanguageModelBase:
    """Framework-free part of the language models: perplexity and greedy generation.

    Framework classes supply ``token_tensor(index, device)`` (a (1, 1) tensor) and
    ``argmax_token(Y) -> int``.
    """

    metric_name = "ppl"
    metric = staticmethod(np.exp)

    def divergence_limit(self) -> tuple[float, str]:
        """Twice the vocabulary size V.

        A uniform guess over V tokens has perplexity V, and an untrained model with small
        weights starts close to it; even the letter frequencies alone do better. A model
        still above 2V after an epoch predicts worse than chance by a wide margin: its
        updates are making it worse (a slow but sane run with a tiny ``lr`` stays near V).
        """
        V = getattr(self, "vocab_size", None)
        if not V:
            return math.inf, ""
        return 2 * V, f"le double des {V} jetons du vocabulaire, un tirage uniforme donnant {V}"

    def predict(self, prefix: str, num_preds: int, vocab: Any, device: Any = None) -> str:
        """Continue ``prefix`` by ``num_preds`` characters, greedily.

        Characters outside the vocabulary map to ``<unk>``.
        """
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix doit être une chaîne non vide (reçu : {prefix!r})")
        if isinstance(num_preds, bool) or not isinstance(num_preds, int) or num_preds < 0:
            raise ValueError(f"num_preds doit être un entier >= 0 (reçu : {num_preds!r})")
        state, outputs = None, [vocab[prefix[0]]]
        for i in range(len(prefix) + num_preds - 1):
            X = self.token_tensor(outputs[-1], device)  # (1, 1)
            rnn_outputs, state = self.rnn(self.one_hot(X), state)
            if i < len(prefix) - 1:  # warm-up: feed the prefix
                outputs.append(vocab[prefix[i + 1]])
            else:  # predict one step
                outputs.append(self.argmax_token(self.output_layer(rnn_outputs)))
        return "".join(vocab.idx_to_token[i] for i in outputs)


class _Recorder:
    """Collect the losses of ``every_n`` steps, then read them back once and plot their mean."""

    def __init__(self, trainer: TrainerBase, train: bool):
        model = trainer.model
        per_epoch = model.plot_train_per_epoch if train else model.plot_valid_per_epoch
        batches = trainer.num_train_batches if train else trainer.num_val_batches
        self.every_n = max(1, int(batches / per_epoch))
        self.label = ("train_" if train else "val_") + model.metric_name
        self.trainer, self.xs, self.losses = trainer, [], []

        self.norms: list = []  # the groups' gradient norms of each step, flattened

    def add(self, x: float, loss: Any, norms: Sequence = ()) -> None:
        self.xs.append(x)
        self.losses.append(loss)
        self.norms.extend(norms)
        if len(self.losses) >= self.every_n:
            self.flush()

    def flush(self) -> None:
        if not self.losses:
            return
        trainer = self.trainer
        n = len(self.losses)
        read = np.asarray(trainer.to_numpy(self.losses + self.norms), dtype=np.float64)
        values = read[:n]  # one read-back for the losses and the norms
        if self.norms:  # recorded before a divergence stops training: they show its onset
            norms = read[n:].reshape(n, -1)
            for (name, _), column in zip(trainer.norm_groups, norms.T, strict=True):
                trainer.grad_norms[name].extend(zip(self.xs, column.tolist(), strict=True))
        with np.errstate(over="ignore"):
            metric = np.asarray(trainer.model.metric(values))  # exp(1e30) = inf: diverged too
        if not np.all(np.isfinite(values)):
            trainer.diverged(f"la perte est devenue {values[~np.isfinite(values)][0]:.4g}")
        if not np.all(np.isfinite(metric)):
            trainer.diverged(f"la perte est devenue {np.max(values):.4g}")
        x, y = float(np.mean(self.xs)), float(np.mean(metric))
        limit, why = trainer.model.divergence_limit()
        if trainer.epoch >= 1 and y > limit:  # the first epoch starts from an untrained model
            trainer.diverged(f"{self.label} vaut {y:.4g}, au-delà de {limit:g} ({why})")
        trainer.history[self.label].append((x, y))
        trainer.model.board.draw(x, y, self.label)
        self.xs, self.losses, self.norms = [], [], []


class TrainerBase(HyperParameters):
    """Fit a model to a data module: ``Trainer(max_epochs, num_gpus=0, gradient_clip_val=0,
    grad_norm_groups=None)``.

    After ``fit``, ``history[label]`` holds the plotted points (epoch, value), for instance
    ``history['val_ppl']``, and ``epoch_times`` the seconds spent on each epoch.

    ``grad_norm_groups`` maps a name to a layer of the model or to a list of its parameters;
    ``grad_norms[name]`` then holds, for every training step in order, the pair (epoch, L2
    norm of the group's gradients before clipping), the epoch counted as in ``history``.
    """

    framework = "?"

    def __init__(
        self,
        max_epochs: int,
        num_gpus: int = 0,
        gradient_clip_val: float = 0,
        grad_norm_groups: Mapping | None = None,
    ):
        self.save_hyperparameters()
        self.max_epochs = capped_epochs(max_epochs)
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 0:
            raise ValueError(f"num_gpus doit être un entier >= 0 (reçu : {num_gpus!r})")
        check_positive("gradient_clip_val", gradient_clip_val, allow_zero=True)
        self.check_grad_norm_groups(grad_norm_groups)
        self.device, self.device_description = self.select_device(num_gpus)
        self.history: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.epoch_times: list[float] = []
        self.norm_groups: list[tuple[str, list]] = []  # (name, parameters), set by fit
        self.grad_norms: dict[str, list[tuple[float, float]]] = {}
        self.step_norms: tuple = ()  # the last step's norms, on the device

    def check_grad_norm_groups(self, groups: Any) -> None:
        """A mapping name -> layer, or name -> non-empty list of parameters; else ValueError."""
        if groups is None:
            return
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError(
                "grad_norm_groups doit être None ou un dict non vide {nom: couche ou liste de "
                f"paramètres}} (reçu : {groups!r})"
            )
        for name, value in groups.items():
            where = f"grad_norm_groups[{name!r}]"
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"grad_norm_groups : le nom {name!r} doit être une chaîne non vide"
                )
            if self.layer_parameters(value) is not None:
                continue
            if isinstance(value, (list, tuple)) and value:
                bad = [p for p in value if not self.is_parameter(p)]
                if not bad:
                    continue
                raise ValueError(f"{where} : {bad[0]!r} n'est pas un paramètre du framework")
            raise ValueError(
                f"{where} doit être une couche ou une liste non vide de paramètres "
                f"(reçu : {type(value).__name__})"
            )

    def resolve_grad_norm_groups(self, model: Any) -> None:
        """The parameters of each group, checked to be the model's (once the model is built)."""
        self.norm_groups, self.grad_norms, self.step_norms = [], {}, ()
        groups = self.grad_norm_groups or {}
        if not groups:
            return
        owned = {id(p) for p in self.model_parameters(model)}
        for name, value in groups.items():
            params = self.layer_parameters(value)
            params = list(value) if params is None else list(params)
            where = f"grad_norm_groups[{name!r}]"
            if not params:
                raise ValueError(f"{where} : cette couche n'a aucun paramètre entraînable")
            outside = [p for p in params if id(p) not in owned]
            if outside:
                raise ValueError(
                    f"{where} : {len(outside)} paramètre(s) n'appartiennent pas au modèle "
                    "entraîné (ou ne sont pas entraînables)"
                )
            self.norm_groups.append((name, params))
        self.grad_norms = {name: [] for name, _ in self.norm_groups}

    # ---- hooks the framework modules implement -------------------------------------------
    def select_device(self, num_gpus: int) -> tuple[Any, str]:
        raise NotImplementedError

    def prepare_model(self, model: Any) -> None:
        raise NotImplementedError

    def prepare_batch(self, batch: Sequence) -> Sequence:
        return batch

    def train_step(self, batch: Sequence) -> Any:
        raise NotImplementedError

    def val_step(self, batch: Sequence) -> Any:
        raise NotImplementedError

    def to_numpy(self, losses: list) -> np.ndarray:
        raise NotImplementedError

    def layer_parameters(self, value: Any) -> list | None:
        """The trainable parameters of ``value`` if it is a layer, else None."""
        return None

    def is_parameter(self, value: Any) -> bool:
        return False

    def model_parameters(self, model: Any) -> list:
        """The parameters the optimizer trains."""
        raise NotImplementedError

    # ---- the loop ------------------------------------------------------------------------
    def prepare_data(self, data: Any) -> None:
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = len(self.val_dataloader) if self.val_dataloader is not None else 0
        check_positive_int(
            "num_train_batches (données d'entraînement vides ?)", self.num_train_batches
        )

    def fit(self, model: Any, data: Any) -> None:
        self.prepare_data(data)
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        self.model = model
        self.prepare_model(model)
        self.resolve_grad_norm_groups(model)
        self.optim = model.configure_optimizers()
        self.epoch = self.train_batch_idx = self.val_batch_idx = 0
        self.history, self.epoch_times = defaultdict(list), []
        print(f"Entraînement sur {self.device_description}, {self.max_epochs} époque(s)")
        for epoch in range(self.max_epochs):
            self.epoch = epoch
            start = time.perf_counter()
            self.fit_epoch()
            self.epoch_times.append(time.perf_counter() - start)
        model.board.finish()
        print(self.summary())

    def fit_epoch(self) -> None:
        train = _Recorder(self, train=True)
        for batch in self.train_dataloader:
            loss = self.train_step(self.prepare_batch(batch))
            train.add(self.train_batch_idx / self.num_train_batches, loss, self.step_norms)
            self.train_batch_idx += 1
        train.flush()
        if self.val_dataloader is None:
            return
        val = _Recorder(self, train=False)
        for batch in self.val_dataloader:
            val.add(self.epoch + 1, self.val_step(self.prepare_batch(batch)))
            self.val_batch_idx += 1
        val.flush()

    def diverged(self, what: str) -> None:
        """Stop training, with the hint: the one place every framework's divergence ends."""
        lr = getattr(self.model, "lr", None)
        raise FloatingPointError(
            f"l'entraînement diverge à l'époque {self.epoch + 1} : {what} ; essayez un taux "
            f"d'apprentissage plus faible (lr={lr}) ou l'écrêtage du gradient "
            f"(gradient_clip_val={self.gradient_clip_val})"
        )

    def summary(self) -> str:
        """One line: the last value of each plotted metric and the time per epoch."""
        parts = [f"{label} {points[-1][1]:.3f}" for label, points in self.history.items()]
        per_epoch = sum(self.epoch_times) / max(1, len(self.epoch_times))
        return f"époque {self.epoch + 1} : " + ", ".join(parts) + f" ; {per_epoch:.2f} s/époque"
