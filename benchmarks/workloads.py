"""The section's training workloads, as code run in a Jupyter kernel, for the shim and d2l.

Each workload is the code a reader runs: build the data, the model and the trainer, then fit
with the training curve drawn. ``StackedRNNScratch`` is not part of d2l 1.0.3's library (the
book defines it in the section), so the reference version is written here, d2l-style; its MXNet
version registers the layers as attributes so that they train (the book's keeps them in a list,
which d2l's MXNet parameter collection does not see).
"""

from __future__ import annotations

from book.execute import seed_code

SECTION = dict(batch_size=1024, num_steps=32, num_hiddens=32, num_layers=2, lr=2, clip=1)

STUB_TORCHVISION = """
import sys, types
tv = types.ModuleType('torchvision'); tv.transforms = types.ModuleType('torchvision.transforms')
sys.modules['torchvision'] = tv; sys.modules['torchvision.transforms'] = tv.transforms
"""

IMPORTS = {
    ("shim", "pytorch"): "import torch\nfrom torch import nn\nfrom d2l_shim import torch as d2l",
    ("shim", "tensorflow"): "import tensorflow as tf\nfrom d2l_shim import tensorflow as d2l",
    ("shim", "mxnet"): "from mxnet import np, npx\nfrom mxnet.gluon import nn, rnn\n"
    "from d2l_shim import mxnet as d2l\nnpx.set_np()",
    ("d2l", "pytorch"): STUB_TORCHVISION + "import torch\nfrom torch import nn\n"
    "from d2l import torch as d2l",
    ("d2l", "tensorflow"): "import tensorflow as tf\nfrom d2l import tensorflow as d2l",
    ("d2l", "mxnet"): "from mxnet import np, npx\nfrom mxnet.gluon import nn, rnn\n"
    "from d2l import mxnet as d2l\nnpx.set_np()",
}

# d2l 1.0.3 has no StackedRNNScratch: the reference workload defines it as the book does.
D2L_STACKED = {
    "pytorch": """
class StackedRNNScratch(d2l.Module):
    def __init__(self, num_inputs, num_hiddens, num_layers, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.rnns = nn.Sequential(*[d2l.RNNScratch(
            num_inputs if i == 0 else num_hiddens, num_hiddens, sigma)
                                    for i in range(num_layers)])

    def forward(self, inputs, Hs=None):
        outputs = inputs
        if Hs is None: Hs = [None] * self.num_layers
        for i in range(self.num_layers):
            outputs, Hs[i] = self.rnns[i](outputs, Hs[i])
            outputs = torch.stack(outputs, 0)
        return outputs, Hs
""",
    "tensorflow": """
class StackedRNNScratch(d2l.Module):
    def __init__(self, num_inputs, num_hiddens, num_layers, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.rnns = [d2l.RNNScratch(num_inputs if i == 0 else num_hiddens,
                                    num_hiddens, sigma)
                     for i in range(num_layers)]

    def forward(self, inputs, Hs=None):
        outputs = inputs
        if Hs is None: Hs = [None] * self.num_layers
        for i in range(self.num_layers):
            outputs, Hs[i] = self.rnns[i](outputs, Hs[i])
            outputs = tf.stack(outputs, 0)
        return outputs, Hs
""",
    "mxnet": """
class StackedRNNScratch(d2l.Module):
    def __init__(self, num_inputs, num_hiddens, num_layers, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        for i in range(num_layers):  # attributes, so that every layer trains
            setattr(self, f'rnn{i}', d2l.RNNScratch(
                num_inputs if i == 0 else num_hiddens, num_hiddens, sigma))

    def forward(self, inputs, Hs=None):
        outputs = inputs
        if Hs is None: Hs = [None] * self.num_layers
        for i in range(self.num_layers):
            outputs, Hs[i] = getattr(self, f'rnn{i}')(outputs, Hs[i])
            outputs = np.stack(outputs, 0)
        return outputs, Hs
""",
}

MODELS = {
    "scratch": {
        # {stacked}: the class defined above for d2l, the shim's d2l.StackedRNNScratch
        framework: "rnn = {stacked}(num_inputs=len(data.vocab), num_hiddens={h},"
        " num_layers={L})\nmodel = d2l.RNNLMScratch(rnn, vocab_size=len(data.vocab), lr={lr})"
        for framework in ("pytorch", "tensorflow", "mxnet")
    },
    "gru": {
        "pytorch": "gru = d2l.GRU(num_inputs=len(data.vocab), num_hiddens={h}, num_layers={L})\n"
        "model = d2l.RNNLM(gru, vocab_size=len(data.vocab), lr={lr})",
        "tensorflow": "gru = d2l.GRU(num_hiddens={h}, num_layers={L})\n"
        "model = d2l.RNNLM(gru, vocab_size=len(data.vocab), lr={lr})",
        "mxnet": "gru = d2l.GRU(num_hiddens={h}, num_layers={L})\n"
        "model = d2l.RNNLM(gru, vocab_size=len(data.vocab), lr={lr})",
    },
}

# Runs that cannot reach the requested number of epochs on the reference machine (23 GB of
# memory): (epochs, why). Their s/epoch is measured over fewer epochs; d2l's plot grows with
# every epoch, so this favours d2l.
EPOCH_CAPS = {
    ("d2l", "tensorflow", "gru"): (
        30,
        "d2l 1.0.3's TensorFlow GRU leaks ~280 MB per epoch (10 GB after 30 epochs): "
        "100 epochs would need ~28 GB",
    ),
}

# How each library exposes the last validation perplexity after fit.
VAL_PPL = {
    "shim": "trainer.history['val_ppl'][-1][1]",
    "d2l": "model.board.data['val_ppl'][-1].y",
}


def workload_cells(
    lib: str, framework: str, model: str, epochs: int, seed: int | None = None, draw: bool = True
) -> list[str]:
    """The notebook cells of one run; the last one prints a JSON line of results.

    ``seed``: Python, NumPy and the framework seeded alike for both libraries (initial weights,
    batch order). ``draw=False``: the training curve is recorded but not drawn (the board's
    ``display``, in both libraries), for studies that time nothing.
    """
    s = SECTION
    setup = [
        "import json, os, resource, time",
        IMPORTS[(lib, framework)],
    ]
    if seed is not None:
        setup.append(seed_code(framework, seed))
    if lib == "d2l" and model == "scratch":
        setup.append(D2L_STACKED[framework])
    build = [
        f"data = d2l.TimeMachine(batch_size={s['batch_size']}, num_steps={s['num_steps']})",
        MODELS[model][framework].format(
            stacked="StackedRNNScratch" if lib == "d2l" else "d2l.StackedRNNScratch",
            h=s["num_hiddens"],
            L=s["num_layers"],
            lr=s["lr"],
        ),
        f"trainer = d2l.Trainer(max_epochs={epochs}, gradient_clip_val={s['clip']})",
    ]
    if not draw:
        build.append("model.board.display = False")
    fit = [
        "start, cpu_start = time.perf_counter(), time.process_time()",
        "trainer.fit(model, data)",
        "seconds = time.perf_counter() - start",
        "cpu_seconds = time.process_time() - cpu_start",
        "rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024",
        f"print('RESULT ' + json.dumps(dict(seconds=seconds, cpu_seconds=cpu_seconds,"
        f" epochs={epochs},"
        f" val_ppl=float({VAL_PPL[lib]}), max_rss_mb=rss_mb,"
        f" tokens=data.num_train * data.num_steps * {epochs})))",
    ]
    return ["\n".join(setup), "\n".join(build), "\n".join(fit)]
