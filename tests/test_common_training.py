"""The training loop of the core, driven by a tiny fake framework written with NumPy."""

import math

import numpy as np
import pytest

from d2l_shim._common import (
    MAX_EPOCHS_ENV,
    PLOT_ENV,
    LanguageModelBase,
    ModuleBase,
    TrainerBase,
    Vocab,
)
from d2l_shim._common.text import BatchLoader


class FakeData:
    """20 training examples in batches of 2 (10 batches), 10 validation ones (5 batches)."""

    def __init__(self, batch_size=2):
        self.X = np.arange(30, dtype=np.float64)[:, None]  # (30, 1)
        self.batch_size = batch_size

    def train_dataloader(self):
        return BatchLoader([self.X[:20], self.X[:20]], self.batch_size, shuffle=True)

    def val_dataloader(self):
        return BatchLoader([self.X[20:], self.X[20:]], self.batch_size, shuffle=False)


class FakeModel(ModuleBase):
    """A "model" whose loss is a fixed NumPy value that halves at each update."""

    def __init__(self, lr=0.1, plot_train_per_epoch=2, plot_valid_per_epoch=1, nan_at=None):
        self.save_hyperparameters()
        self.board = self.make_board()
        self.w = 1.0
        self.updates = 0

    def configure_optimizers(self):
        return "sgd"


class FakeLM(LanguageModelBase, FakeModel):
    pass


class FakeTrainer(TrainerBase):
    framework = "numpy"

    def select_device(self, num_gpus):
        return "cpu", "cpu (faux cadre de calcul)"

    def prepare_model(self, model):
        self.prepared = True

    def train_step(self, batch):
        model = self.model
        model.updates += 1
        if model.nan_at is not None and model.updates >= model.nan_at:
            return np.array(np.nan, dtype=np.float32)
        model.w /= 2
        return np.array(model.w, dtype=np.float32)  # a 0-d "tensor", not a float

    def val_step(self, batch):
        return np.array(0.5 * self.model.w, dtype=np.float32)

    def to_numpy(self, losses):
        self.reads = getattr(self, "reads", 0) + 1
        return np.stack(losses)


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv(PLOT_ENV, "none")
    monkeypatch.delenv(MAX_EPOCHS_ENV, raising=False)


def test_fit_history_points_and_epoch_times(capsys):
    model, trainer = FakeModel(), FakeTrainer(max_epochs=3)
    trainer.fit(model, FakeData())
    assert trainer.prepared and trainer.optim == "sgd" and model.trainer is trainer
    assert model.updates == 30  # 10 batches x 3 epochs
    train, val = trainer.history["train_loss"], trainer.history["val_loss"]
    assert set(trainer.history) == {"train_loss", "val_loss"}
    assert len(train) == 3 * 2 and len(val) == 3  # plot_train_per_epoch=2, plot_valid_per_epoch=1
    # train points: x = mean position of 5 batches, y = mean loss of those batches
    assert [x for x, _ in train[:2]] == pytest.approx([0.2, 0.7])
    assert train[0][1] == pytest.approx(np.mean([0.5**k for k in range(1, 6)]))
    assert [x for x, _ in val] == [1.0, 2.0, 3.0]
    assert val[0][1] == pytest.approx(0.5 * 0.5**10)
    assert len(trainer.epoch_times) == 3 and all(t >= 0 for t in trainer.epoch_times)
    # losses are read back once per plotted point, never after each step
    assert trainer.reads == 3 * (2 + 1)
    # the board received the same points
    assert model.board.data["train_loss"][1] == pytest.approx([y for _, y in train])
    assert model.board.xlim == [0, 3]


def test_fit_prints_the_device_once_and_a_summary(capsys):
    model, trainer = FakeModel(), FakeTrainer(max_epochs=2)
    trainer.fit(model, FakeData())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert sum("cpu (faux cadre de calcul)" in line for line in lines) == 1
    summary = lines[-1]
    assert summary == trainer.summary()
    assert summary.startswith("époque 2 : ")
    assert "train_loss" in summary and "val_loss" in summary and "s/époque" in summary
    assert f"{trainer.history['val_loss'][-1][1]:.3f}" in summary


def test_plot_points_per_epoch_follow_the_model():
    model = FakeModel(plot_train_per_epoch=5, plot_valid_per_epoch=5)
    trainer = FakeTrainer(max_epochs=2)
    trainer.fit(model, FakeData())
    assert len(trainer.history["train_loss"]) == 2 * 5  # every 2 batches
    assert len(trainer.history["val_loss"]) == 2 * 5  # every batch
    model = FakeModel(plot_train_per_epoch=3)  # 10 batches: every 3, and a last partial point
    trainer = FakeTrainer(max_epochs=1)
    trainer.fit(model, FakeData())
    assert [x for x, _ in trainer.history["train_loss"]] == pytest.approx([0.1, 0.4, 0.7, 0.9])


def test_language_model_plots_perplexity():
    model, trainer = FakeLM(), FakeTrainer(max_epochs=1)
    trainer.fit(model, FakeData())
    assert set(trainer.history) == {"train_ppl", "val_ppl"}
    expected = np.mean(np.exp([0.5**k for k in range(1, 6)]))
    assert trainer.history["train_ppl"][0][1] == pytest.approx(expected)


def test_nan_loss_stops_training_with_advice():
    model, trainer = FakeModel(lr=7.5, nan_at=13), FakeTrainer(max_epochs=5, gradient_clip_val=0)
    with pytest.raises(FloatingPointError) as info:
        trainer.fit(model, FakeData())
    message = str(info.value)
    assert "lr=7.5" in message and "gradient_clip_val=0" in message
    assert "nan" in message
    assert model.updates == 15  # stopped at the first plotted point after the NaN (epoch 2)


def test_infinite_loss_stops_training():
    class InfTrainer(FakeTrainer):
        def val_step(self, batch):
            return np.array(np.inf, dtype=np.float32)

    with pytest.raises(FloatingPointError, match="lr"):
        InfTrainer(max_epochs=2).fit(FakeModel(), FakeData())


class CharLM(LanguageModelBase, FakeModel):
    """A language model over ``vocab_size`` tokens whose loss stays at ``loss``."""

    def __init__(self, loss, vocab_size=28, lr=0.5, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        self.save_hyperparameters()
        self.board = self.make_board()
        self.updates, self.nan_at = 0, None


class ConstantTrainer(FakeTrainer):
    def train_step(self, batch):
        self.model.updates += 1
        return np.array(self.model.loss, dtype=np.float32)

    def val_step(self, batch):
        return np.array(self.model.loss, dtype=np.float32)


@pytest.mark.parametrize(
    "loss",
    [math.log(60), 70.0, 196.0],  # 60 > 2 x 28; MXNet's clamped loss (ppl 2.5e30); ppl 3e85
)
def test_perplexity_far_above_the_vocabulary_size_stops_training(loss):
    ConstantTrainer(max_epochs=1).fit(CharLM(loss), FakeData())  # the first epoch: allowed
    model = CharLM(loss)
    with pytest.raises(FloatingPointError) as info:
        ConstantTrainer(max_epochs=5, gradient_clip_val=0).fit(model, FakeData())
    message = str(info.value)
    assert f"train_ppl vaut {math.exp(loss):.4g}" in message and "56" in message
    assert "époque 2" in message and "lr=0.5" in message and "gradient_clip_val=0" in message
    assert model.updates == 15  # stopped at the first point of the second epoch


def test_perplexity_near_the_vocabulary_size_is_not_divergence():
    """A run with a tiny lr stays just above V for a while (GRU, lr=1e-4: 28.35)."""
    trainer = ConstantTrainer(max_epochs=3)
    trainer.fit(CharLM(math.log(50)), FakeData())
    assert len(trainer.history["val_ppl"]) == 3


def test_divergence_limit_of_a_model_without_vocabulary():
    trainer = FakeTrainer(max_epochs=3)
    trainer.fit(FakeLM(), FakeData())  # no vocab_size: no limit
    assert FakeModel().divergence_limit()[0] == math.inf


def test_max_epochs_env_caps_fit(monkeypatch):
    monkeypatch.setenv(MAX_EPOCHS_ENV, "2")
    model, trainer = FakeModel(), FakeTrainer(max_epochs=100)
    assert trainer.max_epochs == 2
    trainer.fit(model, FakeData())
    assert len(trainer.epoch_times) == 2 and model.updates == 20
    assert model.board.xlim == [0, 2]


def test_fit_twice_restarts_history():
    model, trainer = FakeModel(), FakeTrainer(max_epochs=1)
    trainer.fit(model, FakeData())
    trainer.fit(model, FakeData())
    assert len(trainer.history["val_loss"]) == 1 and len(trainer.epoch_times) == 1


def test_without_validation_data():
    class TrainOnly(FakeData):
        def val_dataloader(self):
            return None

    model, trainer = FakeModel(), FakeTrainer(max_epochs=1)
    trainer.fit(model, TrainOnly())
    assert set(trainer.history) == {"train_loss"}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_epochs": 0}, "max_epochs"),
        ({"max_epochs": 1, "num_gpus": -1}, "num_gpus"),
        ({"max_epochs": 1, "num_gpus": 1.5}, "num_gpus"),
        ({"max_epochs": 1, "gradient_clip_val": -1}, "gradient_clip_val"),
        ({"max_epochs": 1, "gradient_clip_val": math.nan}, "gradient_clip_val"),
    ],
)
def test_trainer_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FakeTrainer(**kwargs)


def test_trainer_keeps_hyperparameters():
    trainer = FakeTrainer(max_epochs=4, num_gpus=1, gradient_clip_val=1)
    assert (trainer.max_epochs, trainer.num_gpus, trainer.gradient_clip_val) == (4, 1, 1)
    assert trainer.device == "cpu"


def test_module_plot_as_d2l():
    model, trainer = FakeModel(), FakeTrainer(max_epochs=1)
    trainer.fit(model, FakeData())
    model.board = model.make_board()
    trainer.train_batch_idx = 5  # num_train_batches = 10, plot_train_per_epoch = 2
    for _ in range(5):
        model.plot("loss", np.float32(2.0), train=True)
    assert model.board.data["train_loss"] == ([0.5], [2.0])


# ---- greedy generation -----------------------------------------------------------------------
class NextLetterLM(LanguageModelBase):
    """A fake language model that always predicts the letter after the last token."""

    def __init__(self, vocab):
        self.vocab, self.seen = vocab, []

    def token_tensor(self, index, device):
        return np.array([[index]])  # (1, 1)

    def one_hot(self, X):
        return np.eye(len(self.vocab))[X.T]  # (1, 1, vocab)

    def rnn(self, inputs, state):
        self.seen.append(int(inputs[0, 0].argmax()))
        return [inputs[0]], (0 if state is None else state + 1)

    def output_layer(self, rnn_outputs):
        return np.roll(rnn_outputs[0], 1, axis=-1)  # (1, vocab)

    def argmax_token(self, Y):
        return int(Y.argmax())


def test_predict_greedy_and_unknown_characters():
    vocab = Vocab(list("abcdefgh "))
    model = NextLetterLM(vocab)
    assert model.predict("ab", 3, vocab) == "abcde"
    assert model.seen == vocab[list("abcd")]  # the prefix is fed, then each prediction
    model = NextLetterLM(vocab)
    out = model.predict("aZ", 2, vocab)  # Z is not in the vocabulary: <unk>
    assert out == "a<unk>" + "".join(vocab.to_tokens([vocab.unk + 1, vocab.unk + 2]))
    assert NextLetterLM(vocab).predict("abc", 0, vocab) == "abc"


@pytest.mark.parametrize(
    ("prefix", "num_preds", "name"), [("", 3, "prefix"), ("a", -1, "num_preds")]
)
def test_predict_bad_input(prefix, num_preds, name):
    vocab = Vocab(list("ab"))
    with pytest.raises(ValueError, match=name):
        NextLetterLM(vocab).predict(prefix, num_preds, vocab)


# ---- hyperparameter checks shared by the models -------------------------------------------
class CheckedModel(ModuleBase):
    def __init__(self, num_hiddens=4, num_layers=1, lr=0.1, sigma=0.01, dropout=0.0):
        self.save_hyperparameters()
        self.check_hyperparameters()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_hiddens": 0}, "num_hiddens"),
        ({"num_layers": 1.5}, "num_layers"),
        ({"lr": 0}, "lr"),
        ({"lr": -1}, "lr"),
        ({"sigma": -0.1}, "sigma"),
        ({"dropout": 1}, "dropout"),
        ({"dropout": -0.5}, "dropout"),
    ],
)
def test_module_checks_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CheckedModel(**kwargs)
    CheckedModel(dropout=0.5, sigma=0)  # valid values pass


class Layer:
    """A fake layer: its "parameters" are plain objects the fake model owns."""

    def __init__(self, *params):
        self.params = list(params)


class GroupTrainer(FakeTrainer):
    """Each group's fake "gradient norm" of a step: the step's loss times the group's rank."""

    def layer_parameters(self, value):
        return value.params if isinstance(value, Layer) else None

    def is_parameter(self, value):
        return isinstance(value, str)

    def model_parameters(self, model):
        return model.params

    def train_step(self, batch):
        loss = super().train_step(batch)
        self.step_norms = tuple(loss * (k + 1) for k in range(len(self.norm_groups)))
        return loss


def grouped_model(**kwargs):
    model = FakeModel(**kwargs)
    model.params = ["W", "b", "V"]
    return model


def test_grad_norms_are_recorded_per_step_and_read_back_with_the_losses():
    model = grouped_model()
    trainer = GroupTrainer(max_epochs=3, grad_norm_groups={"a": Layer(*model.params[:2])})
    trainer.grad_norm_groups["b"] = [model.params[2]]  # a list of parameters
    trainer.fit(model, FakeData())
    a, b = trainer.grad_norms["a"], trainer.grad_norms["b"]
    assert [x for x, _ in a] == [i / 10 for i in range(30)] == [x for x, _ in b]
    assert [n for _, n in a] == pytest.approx([0.5**k for k in range(1, 31)])
    assert [n for _, n in b] == pytest.approx([2 * 0.5**k for k in range(1, 31)])
    assert trainer.reads == 3 * (2 + 1)  # as without groups: no read-back per step


def test_grad_norms_up_to_a_divergence_are_kept():
    model = grouped_model(nan_at=8)
    trainer = GroupTrainer(max_epochs=2, grad_norm_groups={"a": Layer("W")})
    with pytest.raises(FloatingPointError):
        trainer.fit(model, FakeData())
    norms = [n for _, n in trainer.grad_norms["a"]]
    assert len(norms) == 10 and np.isnan(norms[-1])  # two flushes of 5 steps


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ([Layer("W")], "grad_norm_groups doit être"),
        ({"a": 3}, r"grad_norm_groups\['a'\] doit être une couche"),
        ({"a": [3]}, r"grad_norm_groups\['a'\] : 3 n'est pas un paramètre"),
        ({"": Layer("W")}, "grad_norm_groups : le nom ''"),
    ],
)
def test_bad_grad_norm_groups_are_named(groups, match):
    with pytest.raises(ValueError, match=match):
        GroupTrainer(max_epochs=1, grad_norm_groups=groups)


@pytest.mark.parametrize(
    ("group", "match"), [(Layer(), "aucun paramètre"), (["Z"], "n'appartiennent pas au modèle")]
)
def test_groups_are_checked_against_the_model_at_fit(group, match):
    trainer = GroupTrainer(max_epochs=1, grad_norm_groups={"g": group})
    with pytest.raises(ValueError, match=rf"grad_norm_groups\['g'\] : .*{match}"):
        trainer.fit(grouped_model(), FakeData())
