"""pytest plugin for nbval runs: a failing cell names its chapter line and framework.

    python -m pytest --nbval-lax -p book.nbval_report _build/notebooks/pytorch/*.ipynb

A failure then reads `FAILED .../deep-rnn.ipynb::Cell 7 - chapters/deep-rnn.md:42 (pytorch)`,
from the cell's `d2l.line` metadata written by build.py. The plugin also gives the kernels the
build's environment (final plots only, quiet TensorFlow, a thread per core) unless already set.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from book.execute import KERNEL_FORCED, kernel_defaults


class _Crash:
    def __init__(self, message: str) -> None:
        self.message = message


class LocatedFailure:
    """nbval's failure text, headed by the chapter location (also the summary message)."""

    def __init__(self, where: str, text: str) -> None:
        self.where, self.text = where, text
        self.reprcrash = _Crash(where)

    def toterminal(self, tw: Any) -> None:
        tw.line(f"{self.where}: notebook cell failed", red=True, bold=True)
        tw.line(self.text)

    def __str__(self) -> str:
        return f"{self.where}: notebook cell failed\n{self.text}"


def location(item: pytest.Item) -> str | None:
    """'chapters/x.md:42 (pytorch)' for an nbval cell item of a generated notebook."""
    cell = getattr(item, "cell", None)
    if cell is None:
        return None
    meta = cell.get("metadata", {}).get("d2l")
    if not meta:
        return None
    nb = getattr(item.parent, "nb", None)
    framework = nb.metadata.get("d2l", {}).get("framework", "?") if nb is not None else "?"
    return f"{meta['source']}:{meta['line']} ({framework})"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(KERNEL_FORCED)
    for name, value in kernel_defaults().items():  # notebooks run one at a time
        os.environ.setdefault(name, value)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        where = location(item)
        if where:
            report.longrepr = LocatedFailure(where, str(report.longrepr))
