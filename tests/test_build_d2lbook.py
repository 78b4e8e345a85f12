"""Chapters written in the forms d2lbook accepts (tests/fixtures/d2lbook/): the exact cells.

Each chapter of the corpus is built for every framework and its cells (after the header and the
set-up cell) compared with what it must give: (cell type, chapter line, source). None: the
chapter has no notebook for that framework.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import build
import d2l_shim
from book import FRAMEWORKS, SHIM_MODULE, declared_frameworks
from book.branches import select
from book.savecheck import saved
from book.source import frameworks_of, parse

CORPUS = Path(__file__).parent / "fixtures" / "d2lbook"
CHAPTERS, SHIM = CORPUS / "chapters", CORPUS / "shim"


def run_main(args: list[str], chapters: Path = CHAPTERS) -> int:
    return build.main([*args, "--chapters", str(chapters), "--shim", str(SHIM)])


def cells(path: Path) -> list[tuple[str, int, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        (c["cell_type"], c["metadata"]["d2l"]["line"], "".join(c["source"]))
        for c in nb["cells"][2:]
    ]


def same(cells: list[tuple[str, int, str]]) -> dict[str, list[tuple[str, int, str]]]:
    return dict.fromkeys(FRAMEWORKS, cells)


# A section's label anchor sits in its heading; a figure or an equation is a cell of its own.
ETIQUETTES_TITLE = ("markdown", 1, '# Étiquettes à l\'ancienne <a id="sec_etiquettes"></a>')
ETIQUETTES_END = ("code", 19, "b = a + 1\nprint(b)")  # `#@tab` lines of the cell dropped
AUTRES_TITLE = "# D'autres frameworks\n\nUn texte pour tous."
FIGURES = [
    (
        "markdown",
        1,
        """\
# Figures et équations <a id="sec_figures"></a>

Voir [figure 4.1](#fig_cellule), [(4.1)](#eq_etat) et [(4.2)](#eq_sortie), un passage marqué
pour les diapositives, un autre et [**un lien**](x.md)
.""",
    ),
    (
        "markdown",
        8,
        """\
![Une cellule récurrente dont la légende tient sur deux lignes](img/cellule.svg)
<a id="fig_cellule"></a>

*Figure 4.1* : Une cellule récurrente dont la légende tient sur deux lignes""",
    ),
    (
        "markdown",
        12,
        "$$\\mathbf{H}_t = \\phi(\\mathbf{X}_t \\mathbf{W}_{xh}) \\tag{4.1}$$\n"
        '<a id="eq_etat"></a>',
    ),
    (
        "markdown",
        15,
        "$$\n\\mathbf{O}_t = \\mathbf{H}_t \\mathbf{W}_{hq}\n\\tag{4.2}\n$$\n"
        '<a id="eq_sortie"></a>',
    ),
    ("code", 22, "x = 1"),
]
SAUVEGARDE = [
    ("markdown", 1, "# Définitions sauvegardées"),
    (
        "code",
        5,
        'class Compteur:  #@save\n    """Compte des pas."""\n\n'
        "    def __init__(self):\n        self.n = 0",
    ),
    ("code", 14, "@d2l.add_to_class(Compteur)  #@save\ndef ajoute(self, k):\n    self.n += k"),
    (
        "code",
        21,
        "def aide(x):\n    return x\n\n\n#@save\ndef double(x):\n    return 2 * x",
    ),
]
EXPECTED: dict[str, dict[str, list[tuple[str, int, str]] | None]] = {
    "etiquettes": {  # `#@tab` first-line tags, blank lines before the tag
        "pytorch": [ETIQUETTES_TITLE, ("code", 6, "a = 1"), ETIQUETTES_END],
        "tensorflow": [ETIQUETTES_TITLE, ("code", 13, "a = 2"), ETIQUETTES_END],
        "mxnet": [ETIQUETTES_TITLE, ("code", 6, "a = 1"), ETIQUETTES_END],
    },
    "autres-frameworks": {  # jax cells, blocks and branches dropped; `or` of tab.selected
        "pytorch": [
            ("markdown", 1, AUTRES_TITLE),  # a new cell where the frameworks change
            ("markdown", 10, "Un texte pour PyTorch (et JAX)."),
            ("code", 20, "import math"),
            ("code", 30, "nom = 'a'\nprint(nom)"),
        ],
        "tensorflow": [
            ("markdown", 1, AUTRES_TITLE),
            ("code", 25, "import cmath as math"),
            ("code", 30, "nom = 'b'\nprint(nom)"),
        ],
        "mxnet": [
            ("markdown", 1, AUTRES_TITLE),
            ("code", 25, "import cmath as math"),
            ("code", 30, "nom = 'a'\nprint(nom)"),
        ],
    },
    "sauvegarde": same(SAUVEGARDE),  # trailing #@save marks stay in the notebook
    # Slide marks, a caption over two lines, (**$$...$$**) before :eqlabel:
    "figures": same(FIGURES),
    "pytorch-seul": {  # no cell of TensorFlow or MXNet: no notebook for them
        "pytorch": [
            ("markdown", 1, "# Une section pour PyTorch seulement"),
            ("code", 5, "class Modele:\n    pass"),
            ("code", 11, "modele = Modele()"),
        ],
        "tensorflow": None,
        "mxnet": None,
    },
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("d2lbook")
    assert run_main(["notebooks", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("stem", EXPECTED)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_corpus_chapter_gives_its_cells(built, stem, framework):
    path = built / "notebooks" / framework / f"{stem}.ipynb"
    expected = EXPECTED[stem][framework]
    if expected is None:
        assert not path.exists()
    else:
        assert cells(path) == expected


def test_corpus_covers_every_chapter():
    stems = {p.stem for p in CHAPTERS.glob("*.md")} - {"index"}
    assert stems == set(EXPECTED)


def test_multiline_caption_image_is_copied(built):
    for fw in FRAMEWORKS:
        copied = built / "notebooks" / fw / "img" / "cellule.svg"
        assert copied.read_bytes() == (CHAPTERS / "img" / "cellule.svg").read_bytes()


def test_list_names_only_existing_notebooks(tmp_path, capsys):
    section = str(CHAPTERS / "pytorch-seul.md")
    assert run_main(["list", "--out", str(tmp_path), section]) == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "notebooks/pytorch/pytorch-seul.ipynb")
    ]


def test_stale_notebook_of_a_framework_without_cells_is_removed(tmp_path, capsys):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "s.md").write_text("# S\n```{.python .input}\n%%tab all\nx = 1\n```\n")
    out = tmp_path / "out"
    assert run_main(["notebooks", "--out", str(out)], chapters) == 0
    stale = out / "notebooks/mxnet/s.ipynb"
    assert stale.is_file()
    (out / "executed/mxnet").mkdir(parents=True)
    (out / "executed/mxnet/s.ipynb").write_text("{}")
    (chapters / "s.md").write_text("# S\n```{.python .input}\n%%tab pytorch\nx = 1\n```\n")
    assert run_main(["notebooks", "--out", str(out)], chapters) == 0
    assert not stale.exists() and not (out / "executed/mxnet/s.ipynb").exists()
    assert f"no mxnet cell, {stale} removed" in capsys.readouterr().err


def test_one_note_per_chapter_for_frameworks_not_built(capsys):
    assert run_main(["check"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if ": note: " in line]
    assert notes == [
        f"{build.shown(CHAPTERS / 'autres-frameworks.md')}:5: note: jax not built "
        f"(this book builds {', '.join(FRAMEWORKS)}, pyproject.toml [tool.book]): "
        "dropped 1 :begin_tab: block, 1 code cell, 2 tab.selected branches"
    ]
    assert "check: 5 section(s) OK" in err


def test_trailing_save_drift_fails_check_with_a_diff(tmp_path, capsys):
    chapters = tmp_path / "chapters"
    shutil.copytree(CHAPTERS, chapters)
    file = chapters / "sauvegarde.md"
    text = file.read_text()
    file.write_text(text.replace("self.n += k", "self.n += 2 * k").replace("2 * x", "x + x"))
    assert run_main(["check", "--framework", "mxnet"], chapters) == 1
    err = capsys.readouterr().err
    assert f"{file}:15: [mxnet] #@save Compteur.ajoute differs from the shim:" in err
    assert "-    self.n += k\n+    self.n += 2 * k" in err
    assert f"{file}:27: [mxnet] #@save double differs from the shim:" in err
    assert "--- shim _common/compteur.py:double" in err
    file.write_text(text.replace("    self.n = 0", "    self.n = 1"))
    assert run_main(["check", "--framework", "pytorch"], chapters) == 1
    assert f"{file}:5: [pytorch] #@save Compteur differs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("#@save\ndef a(): pass\ndef b(): pass", ["a", "b"]),  # first line: the whole cell
        ("def a(): pass\ndef b():  # @save\n    pass", ["b"]),
        ("@deco(A)  #@save\ndef a(): pass", ["a"]),
        ("%matplotlib inline\n!ls\ndef a():  #@save\n    pass", ["a"]),
        ("def a(x,\n      y):  #@save\n    return x", ["a"]),
        ("#@save\nimport os\nx = 1  #@save", []),  # statements: nothing to compare
        (
            "class A:\n    def f(self):  #@save\n        pass\n    #@save\n    def g(self): pass",
            ["A.f", "A.g"],
        ),  # fmt: skip
        ("class A:  #@save\n    def f(self):  #@save\n        pass", ["A"]),
        ("def a():\n    '''#@save'''\n    return '#@save'\ndef b(): pass  #@save_cell", []),
    ],
)
def test_what_a_save_mark_saves(code, expected):
    names = [f"{cls}.{node.name}" if cls else node.name for _, node, cls in saved(code)]
    assert names == expected


def test_or_of_selected_and_list_form():
    code = (
        "if tab.selected('mxnet') or tab.selected(['jax', 'pytorch']):\n    a = 1\nelse:\n    a = 2"
    )
    assert [select(code, fw) for fw in FRAMEWORKS] == ["a = 1", "a = 2", "a = 1"]


def test_frameworks_of_a_section():
    cell = "```{{.python .input}}\n%%tab {}\nx = 1\n```\n"
    assert frameworks_of(parse(cell.format("all"), "x.md")) == FRAMEWORKS
    assert frameworks_of(parse("# T\n", "x.md")) == FRAMEWORKS
    text = cell.format("all") + cell.format("mxnet, jax") + cell.format("jax")
    assert frameworks_of(parse(text, "x.md")) == ("mxnet",)


def test_declared_frameworks():
    text = '[tool.book]\nframeworks = ["mxnet", "jax"]\n'
    assert declared_frameworks(text) == ("mxnet", "jax")
    project = (Path(build.ROOT) / "pyproject.toml").read_text()
    assert declared_frameworks(project) == FRAMEWORKS
    assert set(SHIM_MODULE.values()) <= set(d2l_shim.FRAMEWORKS)  # each one has its module
    for bad, fragment in [
        ("", "must list the frameworks"),
        ('[tool.book]\nframeworks = "mxnet"', "must list"),
        ('[tool.book]\nframeworks = ["mxnet", "tf"]', "unknown framework 'tf'"),
        ('[tool.book]\nframeworks = ["mxnet", "mxnet"]', "listed twice"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            declared_frameworks(bad)


def test_prose_forms_keep_their_chapter_lines():
    text = (
        "Texte `![x]` ici\nsuite ![a](b.svg)\n\n![une\nlégende](c.svg)\n:label:`fig_c`\n\n"
        "f(**kwargs) reste, (**gras\nsur deux lignes**) non, (~~ni\nceci~~).\n"
    )
    (prose,) = parse(text, "x.md").blocks
    assert [(ln.number, ln.text) for ln in prose.lines] == [
        (1, "Texte `![x]` ici"),
        (2, "suite ![a](b.svg)"),
        (3, ""),
        (4, "![une légende](c.svg)"),  # one line, as if written so
        (6, ":label:`fig_c`"),
        (7, ""),
        (8, "f(**kwargs) reste, gras"),
        (9, "sur deux lignes non, "),
        (10, "."),
        (11, ""),
    ]
