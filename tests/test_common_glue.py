"""d2l.glue: the text of a value, the name rule, what is recorded and what Jupyter displays."""

import sys
import types

import numpy as np
import pytest

from d2l_shim._common import GLUE_MIME, glue, glue_text, recorded


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        (6.2618, ".2f", "6,26"),  # French: a decimal comma
        (6.2618, None, "6,2618"),
        (13212, ",d", "13\u202f212"),  # grouped thousands: narrow no-break space
        (13212, None, "13212"),
        (1234567.891, "_.1f", "1\u202f234\u202f567,9"),
        (1234567.891, ",.2f", "1\u202f234\u202f567,89"),
        (np.float32(0.125), ".1%", "12,5\u202f%"),
        (np.int64(7), None, "7"),
        (2.5e-05, ".1e", "2,5e-05"),
        (True, None, "True"),
        ("plus basse", None, "plus basse"),
        ("v1.2", None, "v1.2"),  # a string as it is
        ("x", ">3", "  x"),
    ],
)
def test_glue_text(value, fmt, text):
    assert glue_text(value, fmt) == text


def test_glue_records_and_returns_the_text():
    assert glue("best_ppl", 6.2618, fmt=".2f") == "6,26"
    assert recorded()["best_ppl"] == "6,26"
    glue("best_ppl", 7, fmt="d")  # a rerun replaces the value
    assert recorded()["best_ppl"] == "7"


@pytest.mark.parametrize("name", ["Best", "1st", "_x", "a-b", "a b", "", "é", 3, None])
def test_glue_name_must_match_the_rule(name):
    with pytest.raises(ValueError, match=r"name .*\[a-z\]\[a-z0-9_\]\*.*" + repr(name)[:2]):
        glue(name, 1.0)


def test_glue_rejects_what_it_cannot_show():
    with pytest.raises(TypeError, match="value.*list.*float"):
        glue("x", [1.0])
    with pytest.raises(ValueError, match=r"fmt='d'.*1\.5"):
        glue("x", 1.5, fmt="d")
    with pytest.raises(ValueError, match="fmt"):
        glue("x", 1.5, fmt=2)


def test_glue_displays_one_output_in_ipython(monkeypatch):
    shown = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: object()
    display = types.ModuleType("IPython.display")
    display.display = lambda data, raw=False: shown.append((data, raw))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    text = glue("val_ppl", 6.2618, ".2f")
    assert shown == [
        ({"text/plain": "val_ppl = 6,26", GLUE_MIME: {"name": "val_ppl", "text": "6,26"}}, True)
    ]
    # the returned text is not echoed again as the cell's result
    assert hasattr(text, "_ipython_display_") and text._ipython_display_() is None


def test_glue_outside_ipython_only_records(monkeypatch):
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: None
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # would fail if imported
    assert glue("quiet", 1) == "1"
    assert recorded()["quiet"] == "1"
