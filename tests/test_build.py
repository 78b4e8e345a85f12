"""build.py and book/: pure functions on inline Markdown, the malformed-chapter corpus, rebuilds.

No kernel here (see test_build_exec.py): the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

import build
from benchmarks.generate import copies_book
from book import BuildError, parse_index, roles
from book.branches import BranchError, select
from book.execute import plan_jobs
from book.notebook import build as build_notebook
from book.notebook import cell_key, dumps, write_atomic
from book.savecheck import compare, shim_definitions
from book.source import Code, Prose, parse

FIXTURES = Path(__file__).parent / "fixtures"
CHAPTERS = FIXTURES / "chapters"
SHIM = FIXTURES / "shim"


def run_main(args: list[str], chapters: Path = CHAPTERS, shim: Path = SHIM) -> int:
    return build.main([*args, "--chapters", str(chapters), "--shim", str(shim)])


def notebook(text: str, framework: str = "pytorch", name: str = "x.md") -> dict:
    section = parse(text, name)
    nb, _ = build_notebook(section, framework, roles.index([section]))
    return nb


# --- source: cells, tabs, fences ---------------------------------------------------------


def test_parse_splits_prose_code_and_tab_blocks():
    text = "\n".join(
        [
            "# T",  # 1
            "```{.python .input}",  # 2
            "%load_ext d2lbook.tab",  # 3
            "tab.interact_select(['mxnet', 'pytorch', 'tensorflow'])",
            "```",
            ":begin_tab:`pytorch`",  # 6
            "Torch only.",  # 7
            ":end_tab:",
            '```{.python .input  n=2 output="check"}',  # 9
            "%%tab mxnet, pytorch",
            "",
            "x = 1",  # 12
            "```",
            "```bash",  # 14
            "ls",
            "```",
        ]
    )
    blocks = parse(text, "x.md").blocks
    assert [type(b) for b in blocks] == [Prose, Prose, Code, Prose]
    assert blocks[1].frameworks == ("pytorch",) and blocks[1].lines[0].number == 7
    code = blocks[2]
    assert (code.code, code.code_line, code.output) == ("x = 1", 12, "check")
    assert code.frameworks == ("pytorch", "mxnet")
    assert [ln.verbatim for ln in blocks[3].lines] == [True, True, True]


def test_tab_all_and_save_flag():
    (code,) = parse("```{.python .input}\n%%tab all\n#@save\ndef f(): pass\n```", "x.md").blocks
    assert code.frameworks == ("pytorch", "tensorflow", "mxnet") and code.save


# --- branches: ast-based tab.selected ------------------------------------------------------

BRANCHY = """\
import x
if tab.selected('pytorch'):
    # torch comment
    a = 1
    if tab.selected('mxnet'):
        b = 2
    else:
        b = 3  # kept
elif tab.selected('tensorflow', 'mxnet'):
    a = 2
else:
    a = 3
def f():
    if tab.selected('mxnet'):
        return 1
    return 2
def g():
    if tab.selected('jax' if False else 'mxnet'): return 5
"""


@pytest.mark.parametrize(
    ("framework", "expected"),
    [
        ("pytorch", "import x\n# torch comment\na = 1\nb = 3  # kept\ndef f():\n    return 2"),
        ("tensorflow", "import x\na = 2\ndef f():\n    return 2"),
        ("mxnet", "import x\na = 2\ndef f():\n    return 1\n    return 2"),
    ],
)
def test_select_keeps_branch_dedented_with_comments(framework, expected):
    code = BRANCHY.split("def g")[0].rstrip()
    assert select(code, framework) == expected


def test_select_one_liner_and_empty_block_gets_pass():
    code = "def g():\n    if tab.selected('mxnet'): return 5\n"
    assert select(code, "mxnet") == "def g():\n    return 5"
    assert select(code, "pytorch") == "def g():\n    pass"
    assert select("if tab.selected('mxnet'):\n    x = 1", "pytorch") == ""


NESTED_ELSE = """\
if tab.selected('pytorch'):
    if ok:
        x = 1
    else:
        x = 2
else: y = 3"""


@pytest.mark.parametrize(
    ("code", "framework", "expected"),
    [
        ("if tab.selected('pytorch'):\n    x = 1\nelse: y = 3", "pytorch", "x = 1"),
        ("if tab.selected('pytorch'):\n    x = 1\nelse: y = 3", "mxnet", "y = 3"),
        ("if tab.selected('mxnet'): x = 1\nelse: y = 3  # c", "pytorch", "y = 3  # c"),
        (NESTED_ELSE, "mxnet", "y = 3"),  # not the nested `else:` above it
        (NESTED_ELSE, "pytorch", "if ok:\n    x = 1\nelse:\n    x = 2"),
    ],
)
def test_select_one_line_else(code, framework, expected):
    assert select(code, framework) == expected


STRINGS = '''\
def f():
    if tab.selected('pytorch'):
        doc = """a
  b
\x20\x20\x20\x20\x20\x20
    c"""
        return doc, f"""{1}
 x""", 'd\\
  e'
    else: return f"""q \x20
  {2:>3}
"""'''


@pytest.mark.parametrize("framework", ["pytorch", "mxnet"])
def test_select_keeps_string_literals_as_they_are(framework):
    """Lines inside a multi-line string are not re-indented: the string keeps its value."""
    scope: dict = {}
    exec(select(STRINGS, framework), scope)
    expected: dict = {"tab": type("Tab", (), {"selected": lambda *names: framework in names})}
    exec(STRINGS, expected)
    assert scope["f"]() == expected["f"]()


@pytest.mark.parametrize(
    ("code", "line", "fragment"),
    [
        ("a = 1\nx = 1 if tab.selected('mxnet') else 2", 2, "whole condition"),
        ("if tab.selected('mxnet') and ok:\n    pass", 1, "whole condition"),
        ("if not tab.selected('mxnet'):\n    pass", 1, "whole condition"),
        ("if tab.selected('pytroch'):\n    pass", 1, "did you mean 'pytorch'?"),
        ("if tab.selected('mxnet') or tab.selected('jx'):\n    pass", 1, "unknown framework 'jx'"),
        ("if tab.selected('mxnet') or ok:\n    pass", 1, "whole condition"),
        ("if tab.selected('mxnet'):\n    a = 1\nelif ok:\n    b = 1", 3, "elif mixes"),
        ("if tab.selected(name):\n    pass", 1, "string literals"),
    ],
)
def test_select_errors_have_lines(code, line, fragment):
    with pytest.raises(BranchError) as err:
        select(code, "pytorch")
    assert err.value.line == line and fragment in err.value.message


# --- roles ---------------------------------------------------------------------------------


def test_roles_number_link_and_tag():
    text = (
        "# S\n:label:`sec_s`\n\n$$a = b$$\n:eqlabel:`eq_a`\n\n"
        "See :numref:`sec_s`, :eqref:`eq_a` and :numref:`sec_other`.\n"
    )
    other = parse("# O\n:label:`sec_other`\n", "o.md")
    section = parse(text, "s.md")
    idx = roles.index([section, other])
    assert roles.check(section, idx) == []
    md, _ = roles.convert(section.blocks[0].lines, section, idx)
    assert "$$a = b \\tag{1.1}$$" in md
    assert '<a id="sec_s"></a>' in md and '<a id="eq_a"></a>' in md
    assert "[section 1](#sec_s), [(1.1)](#eq_a) and [section 2](o.ipynb#sec_other)" in md


@pytest.mark.parametrize(
    ("prose", "word"),
    [
        ("La :numref:`fig_f` montre x.", "figure"),  # after its article
        ("Voir la\n:numref:`fig_f`.", "figure"),  # mid-sentence, at a line's start
        ("Comme le montre la figure (:numref:`fig_f`).", "figure"),
        (":numref:`fig_f` montre x.", "Figure"),  # opens the paragraph
        ("Fin. :numref:`fig_f` montre x.", "Figure"),  # opens a sentence
        ("Fin ?\n:numref:`fig_f` montre x.", "Figure"),
        ("* :numref:`fig_f` montre x.", "Figure"),  # a list item
        ("1. (:numref:`fig_f` montre x.)", "Figure"),
        ("Un titre\n\n:numref:`fig_f` montre x.", "Figure"),  # a new paragraph
        ("## Titre\n:numref:`fig_f` montre x.", "Figure"),  # after a heading
        ("Le :numref:`tab_t` et la :numref:`sec_f`.", "tableau"),
    ],
)
def test_numref_is_lower_case_inside_a_sentence(prose, word):
    text = "# F\n:label:`sec_f`\n\n![c](x.svg)\n:label:`fig_f`\n\n| a |\n|--|\n:label:`tab_t`\n\n"
    section = parse(text + prose + "\n", "f.md")
    md, _ = roles.convert(section.blocks[0].lines, section, roles.index([section]))
    body = md.split('<a id="tab_t"></a>')[-1]
    assert f"[{word} 1." in body
    if "sec_f" in prose:
        assert "la [section 1](#sec_f)" in body


# --- #@save ----------------------------------------------------------------------------------


def test_savecheck_ignores_comments_and_formatting(tmp_path):
    (tmp_path / "torch.py").write_text("class A(Module):\n    def f(self, x):\n        return x\n")
    shim, where = shim_definitions(tmp_path, "torch")
    same = "#@save\nclass A(d2l.Module):  # comment\n    def f(self, x):\n        return (x)\n"
    assert compare([(10, same)], shim, where, "torch") == []
    drift = "#@save\nclass A(d2l.Module):\n    def f(self, x):\n        return x + 1\n"
    ((line, msg),) = compare([(10, drift)], shim, where, "torch")
    assert line == 11 and "-        return x\n+        return x + 1" in msg


def test_savecheck_add_to_class(tmp_path):
    (tmp_path / "torch.py").write_text(
        "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    )
    shim, where = shim_definitions(tmp_path, "torch")
    cells = [
        (1, "class A:  #@save\n    def f(self):\n        return 1"),
        (5, "@d2l.add_to_class(A)  #@save\ndef g(self):\n    return 2"),
    ]
    assert compare(cells, shim, where, "torch") == []
    cells[1] = (5, "@d2l.add_to_class(A)  #@save\ndef g(self):\n    return 3")
    ((line, msg),) = compare(cells, shim, where, "torch")
    assert line == 6 and "A.g differs" in msg  # the def line


# --- notebooks -------------------------------------------------------------------------------


def test_notebook_cells_metadata_ids_and_tags():
    text = (
        'Intro\n\n```{.python .input output="check"}\n%%tab pytorch\nprint(1)\n```\n\n'
        '```{.python .input output="ignore"}\n%%tab all\nprint(1)\n```\n'
        "```{.python .input}\n%%tab all\nprint(1)\n```\n"
    )
    nb = notebook(text)
    header, setup, intro, check, ignore, plain = nb["cells"]
    assert "x.md" in header["source"] and 'find_spec("d2l_shim")' in setup["source"]
    origin = {"source": "x.md", "block": 0, "frameworks": ["pytorch", "tensorflow", "mxnet"]}
    assert intro["metadata"]["d2l"] == {**origin, "line": 1}
    key = cell_key("print(1)")
    assert check["metadata"]["d2l"] == {
        **origin,
        "line": 5,
        "block": 1,
        "frameworks": ["pytorch"],
        "key": key,
    }
    assert check["metadata"]["tags"] == ["nbval-check-output"]
    assert ignore["metadata"]["tags"] == ["nbval-ignore-output"]
    assert "tags" not in plain["metadata"]
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids) and ids[4] == ids[3] + "-2"  # same source: counter
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert [c["id"] for c in notebook(text)["cells"]] == ids  # from content, not random
    assert len(notebook(text, "tensorflow")["cells"]) == 5
    nbformat.validate(nbformat.reads(dumps(nb), as_version=4))


def test_notebook_lines_point_at_the_chapter(tmp_path):
    assert run_main(["notebooks", "--out", str(tmp_path)]) == 0
    for path in tmp_path.glob("notebooks/*/*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        chapter = (build.ROOT / nb.metadata.d2l.source).read_text().split("\n")
        for cell in nb.cells[2:]:
            line = chapter[cell.metadata.d2l.line - 1]
            if cell.cell_type == "code":
                assert line == cell.source.split("\n")[0] or "tab.selected" in line


def test_fixture_notebook_content(tmp_path):
    assert run_main(["notebooks", "--framework", "mxnet", "--out", str(tmp_path)]) == 0
    nb = json.loads((tmp_path / "notebooks/mxnet/demo.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"])
    assert "Texte pour MXNet et TensorFlow." in text and "PyTorch seulement" not in text
    assert "name = 'mx'" in text and "tab.selected" not in text and "%%tab" not in text
    assert "d2lbook" not in text and "[section 2](intro.ipynb#sec_intro)" in text
    assert ":numref:`not_a_ref`" in text  # ```bash stays verbatim prose
    assert (tmp_path / "notebooks/mxnet/img/demo.svg").is_file()
    assert not (tmp_path / "notebooks/pytorch").exists()


def test_rebuild_is_byte_identical(tmp_path, capsys):
    assert run_main(["notebooks", "--out", str(tmp_path / "a")]) == 0
    assert run_main(["notebooks", "--out", str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 9
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    capsys.readouterr()
    assert run_main(["notebooks", "--out", str(tmp_path / "a")]) == 0
    assert "0 written, 6 unchanged" in capsys.readouterr().err


def test_write_atomic_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "n.ipynb"
    target.write_text("old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_reference_outputs_go_into_check_cells(tmp_path, capsys):
    chapters = tmp_path / "chapters"
    shutil.copytree(CHAPTERS, chapters)
    args = ["check", "--framework", "pytorch"]
    assert run_main(args, chapters) == 0
    assert 'demo.md:54: warning: [pytorch] output="check" cell has no reference' in (
        capsys.readouterr().err
    )
    key = cell_key("print(add(2, 3), name)")
    output = {"name": "stdout", "output_type": "stream", "text": "5 torch\n"}
    refs = {"format": 1, "cells": {key: {"code": "print", "outputs": [output]}}}
    (chapters / "outputs").mkdir()
    (chapters / "outputs/demo.pytorch.json").write_text(json.dumps(refs))
    assert run_main(["notebooks", "--framework", "pytorch", "--out", str(tmp_path)], chapters) == 0
    assert "warning" not in capsys.readouterr().err
    nb = nbformat.read(tmp_path / "notebooks/pytorch/demo.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.d2l.get("key") == key]
    assert cell.outputs == [output]


def test_list_generates_and_prints_paths(tmp_path, capsys):
    assert run_main(["list", "--framework", "tensorflow", "--out", str(tmp_path)]) == 0
    paths = capsys.readouterr().out.split()
    assert paths == [str(tmp_path / "notebooks/tensorflow/demo.ipynb"),
                     str(tmp_path / "notebooks/tensorflow/intro.ipynb")]  # fmt: skip
    assert all(Path(p).is_file() for p in paths)


def test_framework_option_takes_a_comma_separated_list(tmp_path, capsys):
    """The current stack (no MXNet) builds two frameworks at once; a wrong name is refused."""
    args = ["list", "--framework", "pytorch,tensorflow", "--out", str(tmp_path)]
    assert run_main(args) == 0
    folders = {Path(p).parent.name for p in capsys.readouterr().out.split()}
    assert folders == {"pytorch", "tensorflow"}
    with pytest.raises(SystemExit):
        run_main(["list", "--framework", "pytorch,torch", "--out", str(tmp_path)])
    assert "unknown framework(s) 'torch'" in capsys.readouterr().err


def test_pages_step_says_when_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(build.importlib.util, "find_spec", lambda name: None)
    book = build.Book([], roles.Index(), ("pytorch",), tmp_path)
    assert build.pages(book) == 0
    assert "pages: not built (book/pages/ missing)" in capsys.readouterr().err


def test_a_book_of_many_sections_generates_every_notebook(tmp_path):
    # How long it takes is measured by `python -m benchmarks.generate`, not here.
    chapters = copies_book(tmp_path, 8)  # 8 sections x 3 frameworks
    assert run_main(["notebooks", "--out", str(tmp_path / "out")], chapters) == 0
    assert len(list((tmp_path / "out").rglob("*.ipynb"))) == 24


# --- malformed chapters: one precise FILE:LINE message each, nothing written -----------------

CELL = "```{.python .input}\n%%tab all\nx = 1\n```\n"
CORPUS = [
    (
        "unknown tab",
        "# T\n\n```{.python .input}\n%%tab pytorch, mxnett\nx = 1\n```\n",
        4,
        "unknown framework 'mxnett' (pytorch, tensorflow, mxnet or all; did you mean 'mxnet'?)",
    ),
    ("missing %%tab", "# T\n```{.python .input}\nx = 1\n```\n", 3, "without `%%tab"),
    ("unclosed fence", "# T\n\n```{.python .input}\n%%tab all\nx = 1\n", 3, "unclosed code fence"),
    ("unclosed begin_tab", "# T\n:begin_tab:`pytorch`\nText\n", 2, "unclosed :begin_tab:"),
    ("unknown begin_tab", "# T\n:begin_tab:`tf`\nText\n:end_tab:\n", 2, "unknown framework 'tf'"),
    (
        "unknown #@tab after blank lines",
        "# T\n```{.python .input}\n\n#@tab pytorch,jaxx\nx = 1\n```\n",
        4,
        "unknown framework 'jaxx'",
    ),
    ("end_tab alone", "# T\n:end_tab:\n", 2, ":end_tab: without :begin_tab:"),
    (
        "unknown tab.selected",
        "# T\n```{.python .input}\n%%tab all\nx = 1\nif tab.selected('jax', 'tensorflw'):\n"
        "    x = 2\n```\n",
        5,
        "unknown framework 'tensorflw' (pytorch, tensorflow, mxnet or all; did you mean",
    ),
    (
        "unresolvable form",
        "# T\n```{.python .input}\n%%tab all\n\nx = 1 if tab.selected('mxnet') else 2\n```\n",
        5,
        "whole condition of an if/elif",
    ),
    (
        "form after a dropped #@tab line",
        "# T\n```{.python .input}\n%%tab all\n#@tab all\n"
        "x = 1 if tab.selected('mxnet') else 2\n```\n",
        5,
        "whole condition of an if/elif",
    ),
    ("dangling numref", "# T\n\nSee :numref:`fig_nowhere`.\n", 3, "refers to no :label:"),
    ("dangling eqref", "# T\n\nSee :eqref:`eq_nowhere`.\n", 3, ":eqref:`eq_nowhere`"),
    (
        "duplicate label",
        "# T\n:label:`sec_t`\n## U\n:label:`sec_t`\n",
        4,
        "duplicate label 'sec_t'",
    ),
    ("missing image", "# T\n\n![A](img/nothing.svg)\n", 3, "image not found: img/nothing.svg"),
    (
        "image out of the book",
        "# T\n\n![A](../../../../../../../../../etc/passwd)\n",
        3,
        "image outside the chapter's folder",
    ),
    ("absolute image path", "# T\n\n![A](/etc/passwd)\n", 3, "must be relative"),
    (
        "save drift",
        "# T\n```{.python .input}\n%%tab all\n#@save\ndef add(a, b):\n    return a - b\n```\n",
        5,
        "add differs from the shim",
    ),
    (
        "save missing",
        "# T\n```{.python .input}\n%%tab pytorch\n#@save\ndef nope():\n    pass\n```\n",
        5,
        "nope is not in d2l_shim/torch.py",
    ),  # fmt: skip
    (
        "bad output attr",
        '# T\n```{.python .input output="maybe"}\n%%tab all\nx=1\n```\n',
        2,
        "output=",
    ),
    ("empty file", "\n  \n", 1, "empty chapter"),
    ("non-UTF-8", b"# T\n\nCaf\xe9\n", 3, "not valid UTF-8: byte 0xe9 at column 4"),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_malformed_chapter(tmp_path, capsys, text, line, fragment):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    file = chapters / "bad.md"
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out"
    for command in ("check", "notebooks", "execute"):
        assert run_main([command, "--out", str(out)], chapters) == 1
        err = capsys.readouterr().err
        assert f"{file}:{line}: " in err, err
        assert fragment in err.split(f"{file}:{line}: ", 1)[1].split("\n")[0] + err, err
        assert "nothing written" in err
    assert not out.exists()


def test_save_drift_shows_a_diff(tmp_path, capsys):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "bad.md").write_text(dict((c[0], c[1]) for c in CORPUS)["save drift"])
    assert run_main(["check", "--framework", "tensorflow"], chapters) == 1
    err = capsys.readouterr().err
    assert "[tensorflow] #@save add differs" in err
    assert "-    return a + b\n+    return a - b" in err


def test_check_reports_every_problem_of_every_file(tmp_path, capsys):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "a.md").write_text("# A\n\n:numref:`x`\n\n:numref:`y`\n")
    (chapters / "b.md").write_text("# B\n```{.python .input}\nx = 1\n```\n")
    assert run_main(["check"], chapters) == 1
    err = capsys.readouterr().err
    assert f"{chapters / 'a.md'}:3:" in err and f"{chapters / 'a.md'}:5:" in err
    assert f"{chapters / 'b.md'}:3:" in err


def test_parse_raises_build_error_with_all_problems():
    with pytest.raises(BuildError) as err:
        parse(":end_tab:\n```{.python .input}\nx\n```\n:begin_tab:`jx`\n", "x.md")
    assert [p.line for p in err.value.problems] == [1, 3, 5, 5]


def test_identical_check_cells_get_distinct_reference_keys():
    from book.notebook import cell_key

    seen: dict[str, int] = {}
    first, second, other = (cell_key(c, seen) for c in ("print(n)", "print(n)", "print(m)"))
    assert first == cell_key("print(n)") and second == f"{first}-2"
    assert other == cell_key("print(m)")


def test_sections_may_follow_options(tmp_path, capsys):
    section = str(CHAPTERS / "intro.md")
    assert run_main(["list", "--framework", "mxnet", "--out", str(tmp_path), section]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "notebooks/mxnet/intro.ipynb")]


def test_all_says_where_the_book_is(monkeypatch, capsys, tmp_path):
    import book.pages

    def render(executed, site, sections, frameworks, chapters):
        return [site / "index.html"]

    monkeypatch.setattr(book.pages, "render", render)
    built = build.Book([], roles.Index(), ("pytorch",), tmp_path)
    assert build.pages(built) == 0
    err = capsys.readouterr().err
    assert "book ready:" in err and (tmp_path / "site" / "index.html").as_uri() in err


@pytest.mark.parametrize(
    "notebooks,jobs,cpus,expected",
    [
        (3, None, 2, (3, 1)),  # up to two single-threaded kernels per core
        (6, None, 2, (4, 1)),
        (1, None, 2, (1, 2)),  # alone: every core
        (6, None, 16, (6, 2)),  # fewer notebooks than cores: the cores shared out
        (3, 3, 2, (3, 1)),  # more kernels than cores: still one thread each
        (2, 8, 4, (2, 2)),  # never more kernels than notebooks
        (4, 1, 4, (1, 4)),
    ],
)
def test_plan_jobs(notebooks, jobs, cpus, expected):
    assert plan_jobs(notebooks, jobs, cpus) == expected


def test_heartbeat_names_cells_still_running_until_they_end():
    from book.execute import Heartbeat

    said: list[str] = []
    with Heartbeat(said.append, every=0.05) as heartbeat:
        heartbeat.begin("chapters/x.md mxnet", 8, 13)
        time.sleep(0.3)
        heartbeat.end("chapters/x.md mxnet")
        count = len(said)
        time.sleep(0.2)
    assert count >= 2 and len(said) == count  # silent once the cell ended
    assert all(s.startswith("chapters/x.md mxnet cell 8/13 running for ") for s in said)


def test_commands_started_with_the_kernels_defaults(monkeypatch):
    """python -m book.execute COMMAND (make jupyter): the kernels' settings, the user's first."""
    import subprocess
    import sys

    from book.execute import kernel_defaults

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    show = "import os; print(os.environ['MALLOC_ARENA_MAX'], os.environ['OMP_NUM_THREADS'])"
    root = Path(__file__).parents[1]
    command = [sys.executable, "-m", "book.execute", sys.executable, "-c", show]
    run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=root)
    assert run.stdout == f"{kernel_defaults()['MALLOC_ARENA_MAX']} 7\n"
    usage = subprocess.run(command[:3], capture_output=True, text=True, cwd=root)
    assert usage.returncode == 1 and "usage: python -m book.execute COMMAND" in usage.stderr


def test_index_gives_title_introduction_and_sections_in_one_reading():
    text = (
        "# Le livre\n\nUne introduction.\n\n```python\nx = 1\n```\n\n"
        "```toc\n:maxdepth: 1\n\nb\na.md\n```\n\nFin.\n"
    )
    index = parse_index(text)
    assert index.title == "Le livre"
    assert index.intro == "Une introduction.\n\n\n\nFin."
    assert index.stems == ["b", "a"]
    assert parse_index("Texte\n# Pas un titre\n").title is None
