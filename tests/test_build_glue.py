"""Glue on the build side (book/glue.py): `build.py check`, the notebooks' prose, the reference
values in chapters/outputs/. No kernel here: test_build_exec.py runs one (values of a real run,
a name the run did not record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import build
from book import glue, roles
from book.execute import cache_key, dependency_files
from book.notebook import build as build_notebook
from book.notebook import dumps, dumps_references, load_glue
from book.source import Line, parse

SHIM = Path(__file__).parent / "fixtures" / "shim"
FENCE = "```"


def cell(names: str, code: str) -> str:
    return f"{FENCE}{{.python .input}}\n%%tab {names}\n{code}\n{FENCE}\n"


# line 1: title; the cell's code starts at line 5 (fence at 3, tab line at 4)
PPL = cell("all", "ppl = 6.2618\nd2l.glue('val_ppl', ppl, fmt='.2f')")
CHAPTER = f"""# Glue

{PPL}
La perplexité de validation vaut :glue:`val_ppl`.

{cell("pytorch", "d2l.glue('fw_word', 'torch')")}
{cell("tensorflow, mxnet", "d2l.glue('fw_word', 'autre')")}
:begin_tab:`pytorch`
En PyTorch : :glue:`fw_word`.
:end_tab:

| L | perplexité |
|---|---|
| 2 | :glue:`val_ppl` |
:label:`tab_glue`
"""


def main(args: list[str], chapters: Path) -> int:
    return build.main([*args, "--chapters", str(chapters), "--shim", str(SHIM)])


def write(tmp_path: Path, text: str, name: str = "g.md") -> tuple[Path, Path]:
    chapters = tmp_path / "chapters"
    chapters.mkdir(exist_ok=True)
    (chapters / name).write_text(text, encoding="utf-8")
    return chapters, chapters / name


def errors(err: str, file: Path) -> list[str]:
    """`LINE: message` of the errors (not warnings) about `file`."""
    prefix = f"{file}:"
    return [
        line[len(prefix) :]
        for line in err.splitlines()
        if line.startswith(prefix) and ": warning: " not in line
    ]


# ---- pure functions -----------------------------------------------------------------------
def test_roles_of_prose_lines_skip_verbatim_ones():
    lines = [Line(3, "a :glue:`x` et :glue:`y_2`"), Line(4, ":glue:`z`", verbatim=True)]
    assert glue.roles(lines) == [(3, "x"), (3, "y_2")]


def test_calls_read_literal_names_and_say_what_is_wrong():
    code = (
        "%time x = 1\n"  # a magic: the code still parses, lines unchanged
        "d2l.glue('a', 1)\n"
        "glue(name='b', value=2)\n"
        "d2l.glue(f'c{i}', 3)\n"
        "d2l.glue('Bad', 4)\n"
        "d2l.glue()\n"
        "print('glue')\n"
    )
    found = glue.calls(code)
    assert [(c.line, c.name) for c in found] == [
        (2, "a"),
        (3, "b"),
        (4, None),
        (5, "Bad"),
        (6, None),
    ]
    assert "must be a literal string" in found[2].problem and "f'c{i}'" in found[2].problem
    assert "must match [a-z][a-z0-9_]*" in found[3].problem
    assert "without a name" in found[4].problem
    assert not found[0].problem and not found[1].problem
    assert glue.calls("def (") == []


def test_fill_and_placeholder():
    text = "vaut :glue:`a` ou :glue:`b`"
    assert glue.fill(text, {"a": "6,26"}) == "vaut 6,26 ou `b`"


def test_recorded_reads_the_outputs_and_the_last_value_wins():
    out = {"output_type": "display_data", "metadata": {}}
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {
                "cell_type": "code",
                "outputs": [
                    {**out, "data": {glue.MIME: {"name": "a", "text": "1"}}},
                    {"output_type": "stream", "name": "stdout", "text": "a = 1\n"},
                    {**out, "data": {glue.MIME: {"name": "a", "text": "2"}}},
                    {**out, "data": {"text/plain": "a = 3"}},  # not glue
                ],
            },
        ]
    }
    assert glue.recorded(nb) == {"a": "2"}


def test_the_mime_type_is_the_shims():
    from d2l_shim._common.glue import GLUE_MIME, NAME

    assert glue.MIME == GLUE_MIME and glue.NAME.pattern == NAME.pattern


def test_inline_html_one_span_per_framework_or_one_when_they_agree():
    values = {"pytorch": {"a": "6,26", "b": "1"}, "tensorflow": {"a": "6,36", "b": "1"}}
    out = glue.inline_html(":glue:`a` ; :glue:`b` ; :glue:`c`", values, ["pytorch", "tensorflow"])
    a, b, c = out.split(" ; ")
    assert a == (
        '<span class="glue" data-show-for="pytorch" title="valeur calculée par le code '
        'PyTorch">6,26</span><span class="glue" data-show-for="tensorflow" title="valeur '
        'calculée par le code TensorFlow" hidden>6,36</span>'
    )
    assert "data-show-for" not in b and ">1</span>" in b and "(PyTorch, TensorFlow)" in b
    assert ">`c`</span>" in c  # no value anywhere: the placeholder


# ---- build.py check -----------------------------------------------------------------------
def test_check_accepts_a_chapter_whose_references_are_recorded(tmp_path, capsys):
    chapters, file = write(tmp_path, CHAPTER)
    assert main(["check"], chapters) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    # no reference values yet: one warning per framework, at the first reference
    assert f"{file}:9: warning: [pytorch] no value of the reference run in g.pytorch.json " in err
    assert "for :glue: val_ppl, fw_word; run `python build.py execute" in err


GLUE_X_PYTORCH = cell("pytorch", 'd2l.glue("x", 1)')
GLUE_X_ALL = cell("all", 'd2l.glue("x", 1)')
OTHERS = cell("tensorflow, mxnet", "y = 1")
GLUE_LOOP = cell("all", "for n in names:\n    d2l.glue(n, 1)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "# T\n\nVaut :glue:`nowhere`.\n",
            "3: :glue:`nowhere`: no code cell of this section records 'nowhere' "
            "(d2l.glue('nowhere', value))",
        ),
        (  # shared prose, a value recorded for PyTorch only
            f"# T\n\n{GLUE_X_PYTORCH}\n{OTHERS}\nVaut :glue:`x`.\n",
            "13: :glue:`x`: no code cell of this section records 'x' (d2l.glue('x', value)) "
            "[TensorFlow, MXNet]",
        ),
        (
            f"# T\n\n{GLUE_LOOP}",
            "6: glue's name must be a literal string, e.g. d2l.glue('val_ppl', ppl), not `n`: "
            "the build reads the names in the code to check the prose's :glue: references",
        ),
        (
            f"# T\n\n{GLUE_X_ALL}\n{GLUE_X_ALL.replace(', 1)', ', 2)')}",
            "10: glue name 'x' is already recorded by the cell at line 5: one cell per name, "
            "so that the prose shows one value",
        ),
        ("# T\n\nVaut :glue:`Bad`.\n", "3: :glue:`Bad`: a glue name must match [a-z][a-z0-9_]*"),
        (
            f"# T\n\n{GLUE_X_ALL}\n$$y = :glue:`x`$$\n",
            "8: :glue:`x` inside $...$: put the value outside the formula",
        ),
        (
            f"# T\n\n{GLUE_X_ALL}\nSoit $p = :glue:`x`$ et \\$ :glue:`x`.\n",
            "8: :glue:`x` inside $...$: put the value outside the formula",
        ),
    ],
    ids=[
        "no cell",
        "one framework only",
        "not literal",
        "two cells",
        "bad name",
        "in display math",
        "in math",
    ],
)
def test_check_errors_name_the_line(tmp_path, capsys, text, expected):
    chapters, file = write(tmp_path, text)
    assert main(["check"], chapters) == 1
    err = capsys.readouterr().err
    assert errors(err, file) == [expected], err


def test_check_allows_one_value_from_the_branches_of_one_cell(tmp_path, capsys):
    code = "if a < b:\n    d2l.glue('cmp', 'plus basse')\nelse:\n    d2l.glue('cmp', 'plus haute')"
    chapters, file = write(tmp_path, f"# T\n\n{cell('all', code)}\nElle est :glue:`cmp`.\n")
    assert main(["check"], chapters) == 0, capsys.readouterr().err


def test_check_tab_prose_needs_only_its_frameworks_value(tmp_path, capsys):
    text = f"# T\n\n{GLUE_X_PYTORCH}\n{cell('mxnet', 'y = 1')}"
    text += ":begin_tab:`pytorch`\nVaut :glue:`x`.\n:end_tab:\n"
    chapters, file = write(tmp_path, text)
    assert main(["check"], chapters) == 0, capsys.readouterr().err
    chapters, file = write(tmp_path, text.replace(":begin_tab:`pytorch`", ":begin_tab:`mxnet`"))
    assert main(["check"], chapters) == 1
    assert errors(capsys.readouterr().err, file) == [
        "13: :glue:`x`: no code cell of this section records 'x' (d2l.glue('x', value)) [MXNet]"
    ]


# ---- notebooks ----------------------------------------------------------------------------
def notebook(text: str, framework: str, glued: dict[str, str] | None = None) -> dict:
    section = parse(text, "g.md")
    return build_notebook(section, framework, roles.index([section]), glued=glued)[0]


def markdown(nb: dict) -> list[str]:
    return [c["source"] for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_generated_notebook_shows_reference_values_and_keeps_the_roles():
    nb = notebook(CHAPTER, "pytorch", {"val_ppl": "6,26", "fw_word": "torch"})
    header, _, prose, tab, table = markdown(nb)
    assert glue.REFERENCE_NOTE in header
    assert prose == "La perplexité de validation vaut 6,26."
    assert tab == "En PyTorch : torch."
    assert "| 2 | 6,26 |" in table
    meta = [c["metadata"]["d2l"].get("glue") for c in nb["cells"]]
    assert meta[4] == {
        "markdown": "La perplexité de validation vaut :glue:`val_ppl`.",
        "roles": [[9, "val_ppl"]],
    }
    assert [m["roles"] for m in meta if m] == [
        [[9, "val_ppl"]],
        [[22, "fw_word"]],
        [[27, "val_ppl"]],
    ]


def test_generated_notebook_without_reference_values_shows_the_names():
    nb = notebook(CHAPTER, "tensorflow")
    assert markdown(nb)[2] == "La perplexité de validation vaut `val_ppl`."
    assert glue.REFERENCE_NOTE in markdown(nb)[0]
    assert glue.REFERENCE_NOTE not in markdown(notebook("# T\n\nSans glue.\n", "mxnet"))[0]


def test_apply_shows_the_runs_own_values_and_lists_what_it_did_not_record():
    nb = notebook(CHAPTER, "pytorch", {"val_ppl": "6,26", "fw_word": "torch"})
    data = {glue.MIME: {"name": "val_ppl", "text": "5,99"}}
    nb["cells"][3]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": data}]
    assert glue.apply(nb) == [(22, "fw_word")]
    header, _, prose, tab, table = markdown(nb)
    assert prose == "La perplexité de validation vaut 5,99." and "| 2 | 5,99 |" in table
    assert tab == "En PyTorch : `fw_word`."
    assert glue.RUN_NOTE in header and glue.REFERENCE_NOTE not in header
    # on disk (sources as lists of lines) as in memory
    again = json.loads(dumps(nb))
    assert glue.apply(again, {"val_ppl": "1", "fw_word": "2"}) == []
    assert markdown(again)[3] == "En PyTorch : 2."


# ---- reference values (build.py outputs) --------------------------------------------------
def test_reference_file_is_deterministic_and_holds_the_glue_values(tmp_path):
    text = dumps_references({}, {"b": "2", "a": "6,26"})
    assert text == dumps_references({}, {"a": "6,26", "b": "2"})
    assert text.index('"a"') < text.index('"b"') and '"glue"' in text
    assert '"glue"' not in dumps_references({})
    (tmp_path / "x.json").write_text(text)
    assert load_glue(tmp_path / "x.json") == {"a": "6,26", "b": "2"}
    assert load_glue(tmp_path / "absent.json") == {}


def fake_run(out: Path, values: dict[str, str], max_epochs: int | None) -> None:
    """An executed notebook for build.py outputs, as `execute` would leave it (no kernel)."""
    generated = json.loads((out / "notebooks/pytorch/g.ipynb").read_text())
    key = cache_key(generated, dependency_files(build.ROOT, SHIM), max_epochs)
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {glue.MIME: {"name": k, "text": v}}}
        for k, v in values.items()
    ]
    code = [c for c in generated["cells"] if c["cell_type"] == "code"]
    code[1]["outputs"] = outputs
    generated["metadata"]["d2l"]["cache_key"] = key
    (out / "executed/pytorch").mkdir(parents=True, exist_ok=True)
    (out / "executed/pytorch/g.ipynb").write_text(dumps(generated))


def test_outputs_records_the_values_of_the_full_length_run(tmp_path, capsys):
    chapters, file = write(tmp_path, CHAPTER)
    out = tmp_path / "out"
    args = ["--framework", "pytorch", "--out", str(out)]
    assert main(["notebooks", *args], chapters) == 0
    fake_run(out, {"val_ppl": "6,26", "fw_word": "torch"}, max_epochs=2)  # a capped run
    assert main(["outputs", *args], chapters) == 0
    assert "glue values not recorded: no full-length run" in capsys.readouterr().err
    assert load_glue(chapters / "outputs/g.pytorch.json") == {}

    fake_run(out, {"val_ppl": "6,26", "fw_word": "torch"}, max_epochs=None)
    assert main(["outputs", *args], chapters) == 0
    assert load_glue(chapters / "outputs/g.pytorch.json") == {"val_ppl": "6,26", "fw_word": "torch"}
    nb = json.loads((out / "notebooks/pytorch/g.ipynb").read_text())
    assert "La perplexité de validation vaut 6,26." in ["".join(c["source"]) for c in nb["cells"]]
    capsys.readouterr()
    assert main(["check", *args], chapters) == 0
    assert "warning" not in capsys.readouterr().err
