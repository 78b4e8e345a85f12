"""Unit tests of book.pages: pairing cells across frameworks, math, outputs, determinism.

`write_fixture` builds small executed notebooks that follow the build's conventions
(`metadata.d2l = {source, line}`, images beside the notebooks); the browser test uses it too.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from book import pages
from book.pages import Cell, TabGroup, group_cells, markdown_to_html, notebook_cells
from book.pages_math import equation_html, split_tag, tex_to_mathml

SVG_FIGURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="120" viewBox="0 0 240 120">'
    '<rect x="10" y="10" width="220" height="100" fill="#fde" stroke="#b3471d"/>'
    '<text x="120" y="65" text-anchor="middle" font-size="16">RNN profond</text></svg>\n'
)
SVG_PLOT = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="160" viewBox="0 0 {w} 160">'
    '<polyline points="0,150 60,90 120,60 180,45 {w},40" fill="none" stroke="#1f77b4" '
    'stroke-width="2"/><text x="10" y="20">perplexité ({fw})</text></svg>'
)

CHAPTER = "chapters/deep-rnn.md"
TITLE = "# Réseaux de neurones récurrents profonds\n:label:`sec_deep_rnn`"
PROSE_MATH = (
    "Chaque couche $l$ calcule un état caché $\\mathbf{H}_t^{(l)} \\in \\mathbb{R}^{n \\times h}$ "
    "à partir de $\\mathbf{H}_t^{(l-1)}$ ; le produit $a_1 * b_2 * c_3$ n'est pas de l'italique "
    "et `prix = 5$` reste du code. Voir la [Figure 1](#fig_deep_rnn) et l'équation "
    "[(1)](#eq_deep_rnn_H)."
)
# As book/roles.py writes them: the anchor after the image / equation, a numbered caption.
FIGURE = (
    '![Un RNN profond à $L$ couches.](img/deep-rnn.svg)\n<a id="fig_deep_rnn"></a>\n\n'
    "*Figure 1* : Un RNN profond à $L$ couches."
)
EQUATION = (
    "$$\\mathbf{H}_t^{(l)} = \\phi_l\\left(\\mathbf{H}_t^{(l-1)} "
    "\\mathbf{W}_{\\textrm{xh}}^{(l)} + \\mathbf{H}_{t-1}^{(l)} \\mathbf{W}_{\\textrm{hh}}^{(l)} "
    '+ \\mathbf{b}_\\textrm{h}^{(l)}\\right) \\tag{1}$$\n<a id="eq_deep_rnn_H"></a>'
)
SUMMARY = (
    "## Résumé\n\nLa sortie ne dépend que de la dernière couche :\n\n$$\\begin{aligned}"
    "\\mathbf{O}_t &= \\mathbf{H}_t^{(L)} \\mathbf{W}_{\\textrm{hq}} + \\mathbf{b}_\\textrm{q}"
    " \\\\ \\mathbf{W}_{\\textrm{hq}} &\\in \\mathbb{R}^{h \\times q}\\end{aligned} \\tag{2}$$"
)
CODE = {
    "pytorch": "%%tab pytorch\nimport torch\nfrom d2l_shim import torch as d2l",
    "tensorflow": (
        "%%tab tensorflow\nimport tensorflow as tf\nfrom d2l_shim import tensorflow as d2l"
    ),
    "mxnet": "%%tab mxnet\nfrom mxnet import np, npx\nfrom d2l_shim import mxnet as d2l",
}
TRAIN = "%%tab all\nmodel = d2l.RNNLM(rnn, vocab_size=28, lr=2)\ntrainer.fit(model, data)"


def _meta(line: int | None) -> dict:
    return {} if line is None else {"d2l": {"source": CHAPTER, "line": line}}


def _md(text: str, line: int | None) -> nbformat.NotebookNode:
    return new_markdown_cell(text, metadata=_meta(line))


def _code(text: str, line: int | None, outputs=()) -> nbformat.NotebookNode:
    return new_code_cell(text, metadata=_meta(line), outputs=list(outputs))


def fixture_notebook(fw: str, metadata: bool = True) -> nbformat.NotebookNode:
    """One executed notebook of the `deep-rnn` section for `fw`, as the build writes it."""

    def ln(n: int) -> int | None:
        return n if metadata else None

    cells = [
        _md(f"*Généré depuis `{CHAPTER}` : modifiez ce fichier-là.*", ln(0)),
        _code("import sys  # set-up", ln(0)),
        _md(TITLE.replace("\n:label:`sec_deep_rnn`", '\n<a id="sec_deep_rnn"></a>'), ln(1)),
        _md(PROSE_MATH, ln(4)),
        _md(FIGURE, ln(8)),
        _md(EQUATION, ln(12)),
        _code(CODE[fw], ln(20), [new_output("stream", name="stdout", text=f"{fw} prêt\n")]),
    ]
    if fw == "pytorch":
        cells.append(_md("En PyTorch, `nn.GRU` prend `num_inputs` en premier.", ln(25)))
    if fw == "mxnet":
        error = new_output(
            "error",
            ename="ValueError",
            evalue="lr doit être > 0",
            traceback=["\x1b[0;31mValueError\x1b[0m: lr doit être > 0"],
        )
        cells.append(_code(TRAIN, ln(30), [error]))
    else:
        width = 320 if fw == "pytorch" else 300
        plot = new_output("display_data", data={"image/svg+xml": SVG_PLOT.format(w=width, fw=fw)})
        cells.append(_code(TRAIN, ln(30), [plot]))
    cells.append(_md(SUMMARY, ln(40)))
    if fw in ("pytorch", "mxnet"):
        table = (
            "<table><tr><th>couches</th><th>perplexité</th></tr>"
            "<tr><td>2</td><td>1,1</td></tr></table>"
        )
        cells.append(
            _code(
                "%%tab pytorch, mxnet\nmodel.predict('it has', 20, data.vocab)",
                ln(45),
                [
                    new_output("execute_result", data={"text/plain": "'it has a travel'"}),
                    new_output("display_data", data={"text/html": table}),
                ],
            )
        )
    cells.append(_md("Fin de la section.", ln(50)))
    nb = new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    )
    for i, cell in enumerate(nb.cells):
        cell.id = f"{fw[:2]}-{i}"
        if cell.cell_type == "code":
            cell.execution_count = i
    return nb


def write_fixture(executed_dir: Path, frameworks=("pytorch", "tensorflow", "mxnet")) -> Path:
    """Write two sections (`deep-rnn`, `intro`) for `frameworks` under `executed_dir`."""
    for fw in frameworks:
        folder = executed_dir / fw
        (folder / "img").mkdir(parents=True, exist_ok=True)
        (folder / "img" / "deep-rnn.svg").write_text(SVG_FIGURE, encoding="utf-8")
        nbformat.write(fixture_notebook(fw), folder / "deep-rnn.ipynb")
        intro = new_notebook(
            cells=[
                _md("# Introduction", 1),
                _md("Lire d'abord [la section suivante](deep-rnn.ipynb#sec_deep_rnn).", 3),
                _code(f"%%tab {fw}\nprint(1)", 5, [new_output("stream", text="1\n")]),
            ]
        )
        nbformat.write(intro, folder / "intro.ipynb")
    return executed_dir


@pytest.fixture
def chapters(tmp_path: Path) -> Path:
    folder = tmp_path / "chapters"
    folder.mkdir()
    (folder / "index.md").write_text("# Livre\n\n```toc\n:maxdepth: 2\n\nintro\ndeep-rnn\n```\n")
    return folder


# ---------------------------------------------------------------------------- pairing
def _kinds(blocks) -> list[str]:
    return ["group:" + ",".join(b.panels) if isinstance(b, TabGroup) else "prose" for b in blocks]


@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "no-metadata"])
def test_group_cells_shares_prose_and_tabs_code(metadata: bool) -> None:
    cells = {fw: notebook_cells(fixture_notebook(fw, metadata), fw) for fw in pages.FRAMEWORKS}
    blocks = group_cells(cells)
    assert _kinds(blocks) == [
        "prose",  # title (the "generated from" note and set-up cell before it are dropped)
        "prose",
        "prose",
        "prose",
        "group:pytorch,tensorflow,mxnet",
        "prose",  # Résumé
        "group:pytorch,mxnet",
        "prose",
    ]
    first = blocks[4]
    assert [c.kind for c in first.panels["pytorch"]] == ["code", "markdown", "code"]
    assert [c.kind for c in first.panels["mxnet"]] == ["code", "code"]
    assert first.panels["pytorch"][0].source.startswith("import torch")  # no %%tab line


def test_group_cells_same_line_different_text_stays_in_tabs() -> None:
    def nb(fw: str, text: str) -> list[Cell]:
        return [
            Cell(fw, "markdown", "# Titre", line=1),
            Cell(fw, "markdown", text, line=5),
            Cell(fw, "code", f"x = '{fw}'", line=7),
            Cell(fw, "markdown", "Fin.", line=9),
        ]

    blocks = group_cells(
        {"pytorch": nb("pytorch", "Avec torch."), "mxnet": nb("mxnet", "Avec mx.")}
    )
    assert _kinds(blocks) == ["prose", "group:pytorch,mxnet", "prose"]
    assert blocks[1].panels["mxnet"][0].source == "Avec mx."


def test_group_cells_single_framework_and_empty() -> None:
    only = {"tensorflow": notebook_cells(fixture_notebook("tensorflow"), "tensorflow")}
    blocks = group_cells(only)
    groups = [b for b in blocks if isinstance(b, TabGroup)]
    assert [list(g.panels) for g in groups] == [["tensorflow"]]
    assert group_cells({}) == []


def test_notebook_cells_drops_removed_and_empty_cells() -> None:
    nb = fixture_notebook("pytorch")
    nb.cells[3].metadata["tags"] = ["remove-cell"]
    nb.cells.append(_code("   \n", 60))
    cells = notebook_cells(nb, "pytorch")
    assert cells[0].source.startswith("# Réseaux")
    assert all(c.source != PROSE_MATH for c in cells)
    assert all(c.source.strip() for c in cells)


# ---------------------------------------------------------------------------- math, Markdown
def test_tex_to_mathml_uses_unicode_alphabets_and_tags() -> None:
    out = tex_to_mathml(r"\mathbf{W}_{\textrm{xh}}^{(l)} \in \mathbb{R}^{d \times h}, \phi")
    assert out.startswith('<math display="inline">')
    assert "&#x1D416;" in out or "\U0001d416" in out  # bold W
    assert "&#x0211D;" in out or "\u211d" in out  # double-struck R
    assert "&#x000D7;" in out and "&#x02208;" in out  # \times, \in
    assert 'mathvariant="bold"' not in out  # ignored by MathML Core: mapped to Unicode
    assert "\U0001d73d" in tex_to_mathml(r"\boldsymbol{\theta}")  # bold italic theta
    assert split_tag(r"a = b \tag{3}") == ("a = b", "3")
    eq = equation_html(r"x_t \tag{4}", anchor="eq_x")
    assert '<span class="equation" id="eq_x">' in eq and '<span class="eqno">(4)</span>' in eq
    assert "tag" not in eq.split("<annotation")[0]
    # The build's anchor after `$$...$$` becomes the equation's id.
    out = markdown_to_html('$$\nx = 1 \\tag{2}\n$$\n<a id="eq_y"></a>\n\nSuite.', pages.SiteFiles())
    assert out.startswith('<span class="equation" id="eq_y">') and "<p>Suite.</p>" in out


def test_tex_to_mathml_environments_and_errors() -> None:
    aligned = tex_to_mathml(r"\begin{aligned} a &= b \\ c &= d \end{aligned}", display=True)
    assert aligned.count("<mtr>") == 2 and "&</mi>" not in aligned
    split = tex_to_mathml(r"\begin{split} a &= b \\ &= c \end{split}", display=True)
    assert split.count("<mtr>") == 2
    assert "<mtable" in tex_to_mathml(r"a \\ b", display=True)  # no newline mspace
    assert 'class="tex-error"' in tex_to_mathml(r"\begin{aligned} a")


def test_markdown_protects_math_and_code() -> None:
    html_out = markdown_to_html(PROSE_MATH, pages.SiteFiles())
    assert "<em>" not in html_out  # a_1 * b_2 * c_3 stays math
    assert html_out.count("<math") == 4
    assert "<code>prix = 5$</code>" in html_out
    assert 'href="#fig_deep_rnn"' in html_out


def test_french_spacing_only_in_prose() -> None:
    out = markdown_to_html("Un « mot » : oui ? `a : b` et $x : y$", pages.SiteFiles())
    assert "«\u00a0mot\u00a0»\u00a0: oui\u202f?" in out
    assert "<code>a : b</code>" in out and "x : y</annotation>" in out


def test_markdown_figure_links_and_missing_image(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "deep-rnn.svg").write_text(SVG_FIGURE)
    files = pages.SiteFiles(notebook_dir=tmp_path, section="s")
    out = markdown_to_html(FIGURE, files)
    assert out.startswith('<figure><a id="fig_deep_rnn"></a><img src="img/deep-rnn.svg"')
    assert "<figcaption><em>Figure 1</em>\u00a0: Un RNN profond à <math" in out
    assert out.count("Un RNN profond") == 2  # alt text and the build's caption, not 3
    bare = markdown_to_html("![Sans numéro](img/deep-rnn.svg)", files)
    assert "<figcaption>Sans numéro</figcaption>" in bare
    assert files.files == {"img/deep-rnn.svg": tmp_path / "img" / "deep-rnn.svg"}
    link = markdown_to_html("[suite](autre.ipynb#eq_x) [web](https://example.org)", files)
    assert 'href="autre.html#eq_x"' in link and 'href="https://example.org"' in link
    markdown_to_html("![x](img/absente.svg)", files)
    assert files.warnings == ["s: fichier introuvable : img/absente.svg"]


def test_render_output_kinds() -> None:
    files = pages.SiteFiles(section="s")
    svg = pages.render_output(
        {"output_type": "display_data", "data": {"image/svg+xml": SVG_FIGURE}}, files
    )
    (name,) = files.files
    assert name.startswith("s_files/") and name.endswith(".svg") and name in svg
    err = pages.render_output(
        {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["\x1b[31mE\x1b[0m: v"]},
        files,
    )
    assert "\x1b" not in err and "E: v" in err and "Erreur" in err
    text = pages.render_output({"output_type": "stream", "name": "stderr", "text": "<b>"}, files)
    assert text == '<pre class="output stream stderr">&lt;b&gt;</pre>'


def test_chapter_order(chapters: Path, tmp_path: Path) -> None:
    assert pages.chapter_order(["deep-rnn", "zeta", "intro"], chapters) == [
        "intro",
        "deep-rnn",
        "zeta",
    ]
    # Without a toc: the order of build.py, which sorts file names ("-" < ".").
    assert pages.chapter_order(["deep-rnn", "deep-rnn-ex", "a"], tmp_path / "nowhere") == [
        "a",
        "deep-rnn-ex",
        "deep-rnn",
    ]


# ---------------------------------------------------------------------------- whole site
def _snapshot(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_render_site_is_complete_and_deterministic(tmp_path: Path, chapters: Path) -> None:
    executed = write_fixture(tmp_path / "executed")
    site = tmp_path / "site"
    written = pages.render(executed, site, chapters)
    files = _snapshot(site)
    assert sorted(written) == sorted(site / name for name in files)
    for name in ("index.html", "deep-rnn.html", "intro.html", "img/deep-rnn.svg", "book.js"):
        assert name in files
    assert len([n for n in files if n.startswith("deep-rnn_files/")]) == 2  # two plots
    index = files["index.html"].decode()
    assert index.index("Introduction") < index.index("Réseaux de neurones récurrents profonds")
    page = files["deep-rnn.html"].decode()
    assert '<html lang="fr"' in page and "Sommaire" in page
    assert "<title>Réseaux de neurones récurrents profonds — " in page
    assert page.count("<math") >= 6 and '<span class="eqno">(1)</span>' in page
    assert page.count('role="tablist"') == 2
    assert "Généré depuis" not in page and "%%tab" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    assert 'href="deep-rnn.html#sec_deep_rnn"' in files["intro.html"].decode()
    # Second render: same bytes, nothing rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in written}
    assert pages.render(executed, site, chapters) == written
    assert _snapshot(site) == files
    assert {p: p.stat().st_mtime_ns for p in written} == mtimes
    # A render elsewhere gives the same bytes too (no absolute paths in pages).
    assert _snapshot(Path(pages.render(executed, tmp_path / "site2", chapters)[0]).parent) == files


def test_render_shows_only_existing_frameworks(tmp_path: Path, chapters: Path) -> None:
    executed = write_fixture(tmp_path / "executed", frameworks=("pytorch", "mxnet"))
    pages.render(executed, tmp_path / "site", chapters)
    page = (tmp_path / "site" / "deep-rnn.html").read_text()
    assert 'data-framework="mxnet"' in page
    assert 'data-framework="tensorflow"' not in page


def test_main_in_process(tmp_path: Path, chapters: Path, capsys) -> None:
    executed = write_fixture(tmp_path / "executed")
    site = tmp_path / "site"
    assert pages.main([str(executed), str(site), "--chapters", str(chapters)]) == 0
    assert "3 pages" in capsys.readouterr().out
    assert pages.main([str(tmp_path / "absent"), str(site)]) == 2
