"""A notebook taken from the site runs where the project has never been: the real test.

Builds the PyTorch notebook of `chapters/deep-rnn.md` with `--site-url` pointing at a server on
127.0.0.1, renders the site, downloads the notebook through the page's link, makes a fresh
virtual environment with PyTorch and Jupyter's kernel but without the project (pins from
requirements/lock.txt), and executes the notebook there with D2L_MAX_EPOCHS=1. The set-up cell
must fetch the shim's wheel from the served site and install it; then every cell must run.

Slow (a few minutes: the venv's packages come from the registry or local wheels).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import build
from book import shim_wheel_name
from book.pages import render

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "numpy", "matplotlib", "ipykernel", "nbclient")
PYTHON = shutil.which("python3.11")
LEFT_OUT = ("PYTHON", "VIRTUAL_ENV", "D2L_", "MPL", "JUPYTER")
EXECUTE = """\
import sys
import nbclient
import nbformat

nb = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
nbformat.write(nb, sys.argv[2])
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.torch,
    pytest.mark.skipif(PYTHON is None, reason="python3.11 is needed for the fresh environment"),
    # Its fresh venv takes the pinned stack's versions (requirements/lock.txt): run it once,
    # from the pinned stack's tests, not again from the current stack's.
    pytest.mark.skipif(
        sys.version_info[:2] != (3, 11), reason="runs with the pinned stack (Python 3.11) only"
    ),
]


def pins(names: tuple[str, ...]) -> list[str]:
    """`name==version` for each package, as requirements/lock.txt pins it."""
    lock = (ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8")
    found = dict(re.findall(r"(?im)^([a-z0-9_.-]+)==(\S+)$", lock))
    lower = {k.lower(): v for k, v in found.items()}
    return [f"{name}=={lower[name]}" for name in names]


class _Handler(SimpleHTTPRequestHandler):
    requested: list[str]

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        self.requested.append(self.path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(URL, folder served, paths requested) of a server on 127.0.0.1, stopped afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    requested: list[str] = []
    handler = type("Handler", (_Handler,), {"requested": requested})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=site))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/livre", site, requested
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_downloaded_notebook_runs_in_a_fresh_environment(served, tmp_path: Path) -> None:
    url, served_dir, requested = served
    site = served_dir / "livre"
    out = tmp_path / "build"
    chapter = str(ROOT / "chapters" / "deep-rnn.md")
    args = ["notebooks", chapter, "--framework", "pytorch", "--site-url", url, "--out", str(out)]
    assert build.main(args) == 0
    # The generated notebook stands in for the executed one: the pages need no outputs.
    render(out / "notebooks", site, ["deep-rnn"], ("pytorch",), ROOT / "chapters")
    page = (site / "deep-rnn.html").read_text(encoding="utf-8")
    (link,) = re.findall(r'<a href="([^"]+\.ipynb)" download>', page)

    reader = tmp_path / "reader"
    reader.mkdir()
    with urllib.request.urlopen(f"{url}/{link}", timeout=30) as response:
        (reader / "deep-rnn.ipynb").write_bytes(response.read())

    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--progress-bar", "off"]
    subprocess.run([*install, *pins(PACKAGES)], check=True, timeout=900)
    # A reader's environment: nothing of the project's or of the tests' settings (D2L_PLOT...)
    # but the data folder (no network here) and the epoch cap.
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEFT_OUT)}
    env.update(D2L_MAX_EPOCHS="1", PATH=f"{venv / 'bin'}:{env['PATH']}")
    if "D2L_DATA_DIR" in os.environ:
        env["D2L_DATA_DIR"] = os.environ["D2L_DATA_DIR"]
    probe = [str(python), "-c", "import importlib.util as u; print(u.find_spec('d2l_shim'))"]
    before = subprocess.run(probe, env=env, cwd=reader, capture_output=True, text=True)
    assert before.stdout.strip() == "None"  # the project is nowhere in this environment

    script = reader / "execute.py"
    script.write_text(EXECUTE, encoding="utf-8")
    run = subprocess.run(
        [str(python), str(script), "deep-rnn.ipynb", "executed.ipynb"],
        env=env,
        cwd=reader,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert f"/livre/downloads/{shim_wheel_name()}" in requested  # fetched from the site
    shown = subprocess.run(
        [str(python), "-m", "pip", "show", "-f", "d2l-shim"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and str(venv) in shown.stdout
    nb = json.loads((reader / "executed.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code)
    kinds = {o["output_type"] for c in code for o in c["outputs"]}
    assert "error" not in kinds
    figures = {"image/png", "image/svg+xml"}
    images = [o for c in code for o in c["outputs"] if figures & set(o.get("data", {}))]
    assert images, "no training curve drawn"
    assert sys.executable not in run.stdout  # ran in the venv, not in the test's Python
