"""The helpers of the exercises page (chapters/deep-rnn-exercises.md) that turn its runs into
the numbers and words its prose glues: read from the chapter's own cells, run on made-up runs.
"""

import ast
from pathlib import Path

import pytest

from book.source import Code, load

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "deep-rnn-exercises.md"


def chapter_functions(*names):
    """The chapter's top-level functions ``names`` (from its ``%%tab all`` cells), compiled."""
    namespace = {}
    for block in load(CHAPTER, "chapters/deep-rnn-exercises.md").blocks:
        if not (isinstance(block, Code) and block.all_tab):
            continue
        tree = ast.parse(block.code)
        defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
        exec(compile(ast.Module(body=defs, type_ignores=[]), str(CHAPTER), "exec"), namespace)
    missing = set(names) - set(namespace)
    assert not missing, f"fonctions absentes du chapitre : {missing}"
    return namespace


def test_epochs_text_agrees_in_number():
    epochs_text = chapter_functions("epochs_text")["epochs_text"]
    assert epochs_text(1) == "1 époque"
    assert epochs_text(25) == "25 époques"


@pytest.fixture
def ref_at():
    """``ref_at`` on a reference of 10 batches per epoch whose perplexity after k epochs is k."""
    namespace = chapter_functions("ref_at")
    namespace["ref"] = {"batches": 10, "val": [1.0, 2.0, 3.0, 4.0]}  # after 10, 20, 30, 40 steps
    return namespace["ref_at"]


@pytest.mark.parametrize(
    "step, expected",
    [(10, 1.0), (20, 2.0), (23, 2.3), (39, 3.9), (40, 4.0), (5, 1.0), (55, 4.0)],
)
def test_ref_at_interpolates_between_epochs_and_stops_at_the_ends(ref_at, step, expected):
    assert ref_at(step) == pytest.approx(expected)


def test_effect_needs_a_gap_beyond_the_seed_spread():
    effect = chapter_functions("effect")["effect"]
    assert effect(0.5, 0.2) == "gain"  # without the text - with it: the text lowers ppl
    assert effect(-0.5, 0.2) == "perte"
    assert effect(0.1, 0.2) == "nul"
    assert effect(-0.1, 0.2) == "nul"


def test_lower_names_the_direction():
    lower = chapter_functions("lower")["lower"]
    assert lower(1.0, 2.0) == "plus basse"
    assert lower(2.0, 1.0) == "plus haute"
