"""Framework-free core of the shim. Nothing here imports PyTorch, TensorFlow or MXNet."""

from .download import DATA_ENV, TIME_MACHINE, DataError, DataFile, cache_dir, fetch
from .glue import GLUE_MIME, glue, glue_text, recorded
from .hyperparams import (
    MAX_EPOCHS_ENV,
    HyperParameters,
    add_to_class,
    capped_epochs,
    check_len,
    check_positive,
    check_positive_int,
    check_shape,
    seed_python_and_numpy,
)
from .plot import PLOT_ENV, XLABEL, ProgressBoard, figure_svg, legend_label, plot_mode
from .text import BatchLoader, DataModule, TimeMachine, Vocab, build_corpus, make_windows
from .training import LanguageModelBase, ModuleBase, TrainerBase, device_error

__all__ = [
    "DATA_ENV",
    "GLUE_MIME",
    "MAX_EPOCHS_ENV",
    "PLOT_ENV",
    "TIME_MACHINE",
    "BatchLoader",
    "DataError",
    "DataFile",
    "DataModule",
    "HyperParameters",
    "LanguageModelBase",
    "ModuleBase",
    "ProgressBoard",
    "TimeMachine",
    "TrainerBase",
    "XLABEL",
    "Vocab",
    "add_to_class",
    "build_corpus",
    "cache_dir",
    "device_error",
    "capped_epochs",
    "check_len",
    "check_positive",
    "check_positive_int",
    "check_shape",
    "fetch",
    "figure_svg",
    "glue",
    "glue_text",
    "legend_label",
    "make_windows",
    "plot_mode",
    "recorded",
    "seed_python_and_numpy",
]
