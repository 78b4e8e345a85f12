"""The small library behind the deep-RNN book.

One API in three frameworks. Import the module of the framework you use::

    from d2l_shim import torch as d2l        # PyTorch
    from d2l_shim import tensorflow as d2l   # TensorFlow
    from d2l_shim import mxnet as d2l        # MXNet

The three modules export the same public names (``__all__``). What does not depend on a
framework (text, vocabulary, windows, download, plotting, hyperparameters, the training loop)
lives once in ``d2l_shim._common``, which imports no framework.
"""

FRAMEWORKS = ("torch", "tensorflow", "mxnet")
__version__ = "0.1.0"
