"""The reader pages (book/pages/): structure from notebook metadata, Markdown and math, the
whole site (downloads, archives, the shim's wheel), determinism.

`write_fixture` builds a small book the way build.py does (chapter Markdown -> book.notebook),
then "executes" it by adding outputs; the section `intro` has no TensorFlow code, so it has no
TensorFlow notebook (a case the pages must handle). The browser test uses the same fixture.
"""

from __future__ import annotations

import html
import json
import re
import tomllib
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from book import FRAMEWORKS, roles, shim_wheel_name
from book.notebook import build, dumps, setup_code
from book.pages import PagesError, render
from book.pages.blocks import Shared, Tabs, notebook_cells, page_blocks
from book.pages.files import SiteFiles, shim_wheel
from book.pages.html import render_output
from book.pages.markdown import Ids, markdown_to_html
from book.pages.mathml import equation_html, split_tag, tex_to_mathml
from book.source import Code, load

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
PROSE_MATH = (
    "Chaque couche $l$ calcule un état caché $\\mathbf{H}_t^{(l)} \\in \\mathbb{R}^{n \\times h}$ "
    "à partir de $\\mathbf{H}_t^{(l-1)}$ ; le produit $a_1 * b_2 * c_3$ n'est pas de l'italique "
    "et `prix = 5$` reste du code. Voir :numref:`fig_deep_rnn` et l'équation "
    ":eqref:`eq_deep_rnn_H`."
)
FENCE = "```"


def _code(names: str, code: str) -> str:
    return f"{FENCE}{{.python .input}}\n%%tab {names}\n{code}\n{FENCE}\n"


EQUATION = (
    "$$\\mathbf{H}_t^{(l)} = \\phi_l\\left(\\mathbf{H}_t^{(l-1)} \\mathbf{W}_{\\textrm{xh}}^{(l)}"
    " + \\mathbf{b}_\\textrm{h}^{(l)}\\right)$$"
)
ALIGNED = (
    "$$\\begin{aligned}\\mathbf{O}_t &= \\mathbf{H}_t^{(L)} \\mathbf{W}_{\\textrm{hq}} \\\\ "
    "\\mathbf{W}_{\\textrm{hq}} &\\in \\mathbb{R}^{h \\times q}\\end{aligned}$$"
)
TRAIN = _code("all", "model = d2l.RNNLM(rnn, vocab_size=28, lr=2)\ntrainer.fit(model, data)")
# The situation of issue 16: a heading and shared prose right after framework-specific prose.
DEEP_RNN = f"""# Réseaux de neurones récurrents profonds
:label:`sec_deep_rnn`

{PROSE_MATH}

{EQUATION}
:eqlabel:`eq_deep_rnn_H`

![Un RNN profond à $L$ couches.](img/deep-rnn.svg)
:label:`fig_deep_rnn`

## Implémentation à partir de zéro

{_code("pytorch", "import torch")}
{_code("tensorflow", "import tensorflow as tf")}
{_code("mxnet", "from mxnet import np")}
:begin_tab:`pytorch`
En PyTorch, `nn.GRU` prend `num_inputs` en premier.
:end_tab:

Un paragraphe commun, juste après un passage propre à PyTorch.

{TRAIN}
## Implémentation concise

Les frameworks fournissent des couches multicouches.

{_code("pytorch, mxnet", "model.predict('it has', 20, data.vocab)")}
## Résumé

La sortie ne dépend que de la dernière couche :

{ALIGNED}

Fin de la section.
"""
INTRO = f"""# Introduction
:label:`sec_intro`

Lire d'abord :numref:`sec_deep_rnn`. Une formule plus large qu'un téléphone :
$4(dh + h^2 + 2h) + 4(2h^2 + 2h) + (hq + q) = 4(dh + h^2 + 2h) + 4(2h^2 + 2h) = 17308$.

## Résumé

{_code("pytorch, mxnet", "print(1)")}
"""
INDEX = """# Un livre d'essai

Une *introduction* au livre, écrite dans `index.md`.

```toc
intro
deep-rnn
```
"""


def fake_outputs(cell: dict, fw: str) -> list[dict]:
    """What executing a fixture cell would print or draw."""
    code = cell["source"]
    if "trainer.fit" in code and fw == "mxnet":
        trace = ["\x1b[0;31mValueError\x1b[0m: lr doit être > 0"]
        return [{"output_type": "error", "ename": "ValueError", "evalue": "lr", "traceback": trace}]
    if "trainer.fit" in code:
        svg = SVG_PLOT.format(w=320 if fw == "pytorch" else 300, fw=fw)
        return [{"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": svg}}]
    if "predict" in code:
        table = "<table><tr><th>couches</th></tr><tr><td>2</td></tr></table>"
        result = {"output_type": "execute_result", "execution_count": 1, "metadata": {}}
        shown = {"output_type": "display_data", "metadata": {}, "data": {"text/html": table}}
        return [{**result, "data": {"text/plain": "'it has a travel'"}}, shown]
    return [{"output_type": "stream", "name": "stdout", "text": f"{fw} prêt\n"}]


def write_fixture(root: Path, frameworks=FRAMEWORKS) -> tuple[Path, Path]:
    """Chapters under root/chapters, executed notebooks under root/executed (as build.py)."""
    chapters = root / "chapters"
    (chapters / "img").mkdir(parents=True, exist_ok=True)
    (chapters / "img" / "deep-rnn.svg").write_text(SVG_FIGURE, encoding="utf-8")
    (chapters / "index.md").write_text(INDEX, encoding="utf-8")
    sections = []
    for stem, text in (("intro", INTRO), ("deep-rnn", DEEP_RNN)):
        (chapters / f"{stem}.md").write_text(text, encoding="utf-8")
        sections.append(load(chapters / f"{stem}.md", f"chapters/{stem}.md"))
    idx = roles.index(sections)
    for section in sections:
        for fw in frameworks:
            if not any(isinstance(b, Code) and fw in b.frameworks for b in section.blocks):
                continue  # no code for fw: no notebook (as the build does)
            nb, images = build(section, fw, idx)
            for cell in nb["cells"]:
                if cell["cell_type"] == "code" and "generated" not in cell["metadata"]["d2l"]:
                    cell["outputs"] = fake_outputs(cell, fw)
            folder = root / "executed" / fw
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{section.stem}.ipynb").write_text(dumps(nb), encoding="utf-8")
            for src, dest in images:
                (folder / dest).parent.mkdir(parents=True, exist_ok=True)
                (folder / dest).write_bytes(src.read_bytes())
    return root / "executed", chapters


SECTIONS = ["intro", "deep-rnn"]


@pytest.fixture
def book(tmp_path: Path) -> tuple[Path, Path]:
    return write_fixture(tmp_path)


def _notebook(executed: Path, fw: str, stem: str = "deep-rnn") -> dict:
    return json.loads((executed / fw / f"{stem}.ipynb").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- notebook metadata
def test_cells_carry_their_origin_and_split_where_frameworks_change(book) -> None:
    executed, _ = book
    cells = _notebook(executed, "pytorch")["cells"]
    meta = [c["metadata"]["d2l"] for c in cells]
    assert [m.get("generated") for m in meta[:2]] == ["header", "setup"]
    assert all({"block", "line", "frameworks", "source"} <= set(m) for m in meta[2:])
    texts = ["".join(c["source"]) for c in cells]
    only_torch = texts.index("En PyTorch, `nn.GRU` prend `num_inputs` en premier.")
    assert meta[only_torch]["frameworks"] == ["pytorch"]
    shared = texts.index("Un paragraphe commun, juste après un passage propre à PyTorch.")
    assert meta[shared]["frameworks"] == list(FRAMEWORKS)  # a cell of its own
    (eq,) = [m["target"] for m in meta if m.get("target", {}).get("kind") == "equation"]
    assert eq["label"] == "eq_deep_rnn_H" and eq["number"] == "2.1"
    assert eq["tex"].startswith("\\mathbf{H}_t^{(l)} = ") and "$" not in eq["tex"]
    (fig,) = [m["target"] for m in meta if m.get("target", {}).get("kind") == "figure"]
    assert fig == {
        "label": "fig_deep_rnn",
        "kind": "figure",
        "number": "2.1",
        "image": "img/deep-rnn.svg",
        "caption": "Un RNN profond à $L$ couches.",
    }
    assert meta[2]["title"] == "Réseaux de neurones récurrents profonds"
    assert [m["images"] for m in meta if "images" in m] == [["img/deep-rnn.svg"]]
    assert set(_notebook(executed, "pytorch")["metadata"]["d2l"]) == {"source", "framework"}
    # Jupyter readers still see the anchors, numbers and captions in the Markdown.
    joined = "\n".join(texts)
    assert '<a id="fig_deep_rnn"></a>' in joined and "*Figure 2.1* : Un RNN" in joined
    assert "\\tag{2.1}$$" in joined
    assert not (executed / "tensorflow" / "intro.ipynb").exists()


def test_setup_cell_installs_the_wheel_from_beside_the_notebook_or_the_site() -> None:
    wheel = shim_wheel_name()
    offline = setup_code(None)
    assert f'pathlib.Path("{wheel}")' in offline and "site = None" in offline
    online = setup_code("https://example.org/livre/")
    assert "site = 'https://example.org/livre'" in online
    assert 'source = f"{site}/downloads/{wheel.name}"' in online
    assert "--no-deps" in online and "github" not in online + offline
    for code in (offline, online):
        compile(code.replace("%matplotlib inline", ""), "setup", "exec")
        assert max(len(line) for line in code.splitlines()) < 80


# ---------------------------------------------------------------------------- blocks
def _cells(executed: Path, stem: str = "deep-rnn") -> dict:
    return {
        fw: notebook_cells(_notebook(executed, fw, stem), fw)
        for fw in FRAMEWORKS
        if (executed / fw / f"{stem}.ipynb").is_file()
    }


def _kinds(blocks) -> list[str]:
    return ["tabs:" + ",".join(b.panels) if isinstance(b, Tabs) else "prose" for b in blocks]


def test_page_blocks_from_metadata(book) -> None:
    executed, _ = book
    blocks = page_blocks(_cells(executed), FRAMEWORKS)
    assert _kinds(blocks) == [
        "prose",  # title and text (header and set-up cells are left out)
        "prose",  # equation
        "prose",  # figure
        "prose",  # heading
        "tabs:pytorch,tensorflow,mxnet",  # imports, the PyTorch-only paragraph
        "prose",  # shared paragraph: once, outside the tabs (issue 16)
        "tabs:pytorch,tensorflow,mxnet",  # training
        "prose",  # "Implémentation concise": once
        "tabs:pytorch,mxnet",
        "prose",  # Résumé
    ]
    first = blocks[4]
    assert [c.kind for c in first.panels["pytorch"]] == ["code", "markdown"]
    assert [c.kind for c in first.panels["mxnet"]] == ["code"]
    assert blocks[1].cell.target["kind"] == "equation"


def test_page_blocks_pair_by_metadata_not_text(book) -> None:
    executed, _ = book
    cells = _cells(executed)
    # Same text, different origin: not merged. Different text, same origin: one cell.
    cells["mxnet"] = [
        c if c.kind == "code" else type(c)(**{**c.__dict__, "source": c.source + " (mx)"})
        for c in cells["mxnet"]
    ]
    blocks = page_blocks(cells, FRAMEWORKS)
    assert _kinds(blocks)[:4] == ["prose"] * 4
    assert all(isinstance(b, Shared) and b.cell.framework == "pytorch" for b in blocks[:4])


def test_page_blocks_without_a_framework(book) -> None:
    executed, _ = book
    cells = _cells(executed, "intro")
    assert sorted(cells) == ["mxnet", "pytorch"]
    assert _kinds(page_blocks(cells, FRAMEWORKS)) == ["prose", "tabs:pytorch,mxnet"]
    assert page_blocks({}, FRAMEWORKS) == []


def test_cells_without_metadata_are_refused(book, tmp_path: Path) -> None:
    executed, chapters = book
    nb = _notebook(executed, "pytorch")
    del nb["cells"][3]["metadata"]["d2l"]["block"]
    (executed / "pytorch" / "deep-rnn.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(PagesError, match=r"pytorch/deep-rnn.ipynb: cell 4 has no metadata"):
        render(executed, tmp_path / "site", SECTIONS, FRAMEWORKS, chapters)
    assert not (tmp_path / "site").exists()  # nothing half-written


# ---------------------------------------------------------------------------- math, Markdown
def test_tex_to_mathml_uses_unicode_alphabets_and_tags() -> None:
    out = tex_to_mathml(r"\mathbf{W}_{\textrm{xh}}^{(l)} \in \mathbb{R}^{d \times h}, \phi")
    assert out.startswith('<math display="inline">')
    assert "&#x1D416;" in out or "\U0001d416" in out  # bold W
    assert "&#x0211D;" in out or "\u211d" in out  # double-struck R
    assert 'mathvariant="bold"' not in out  # ignored by MathML Core: mapped to Unicode
    assert "\U0001d73d" in tex_to_mathml(r"\boldsymbol{\theta}")  # bold italic theta
    assert split_tag(r"a = b \tag{3}") == ("a = b", "3")
    eq = equation_html(r"x_t \tag{4}", anchor="eq_x")
    assert '<span class="equation" id="eq_x">' in eq and '<span class="eqno">(4)</span>' in eq
    assert '<span class="eqno">(1.2)</span>' in equation_html("x", number="1.2")


def test_tex_to_mathml_environments_and_errors() -> None:
    aligned = tex_to_mathml(r"\begin{aligned} a &= b \\ c &= d \end{aligned}", display=True)
    assert aligned.count("<mtr>") == 2 and "&</mi>" not in aligned
    assert "<mtable" in tex_to_mathml(r"a \\ b", display=True)
    assert 'class="tex-error"' in tex_to_mathml(r"\begin{aligned} a")


def test_markdown_protects_math_and_code() -> None:
    text = PROSE_MATH.replace(":numref:`fig_deep_rnn`", "[Figure 1](#fig_deep_rnn)")
    out = markdown_to_html(text, SiteFiles(), Ids())
    assert "<em>" not in out  # a_1 * b_2 * c_3 stays math
    assert out.count("<math") == 4
    assert "<code>prix = 5$</code>" in out and 'href="#fig_deep_rnn"' in out


def test_french_spacing_only_in_prose() -> None:
    out = markdown_to_html("Un « mot » : oui ? `a : b` et $x : y$", SiteFiles(), Ids())
    assert "«\u00a0mot\u00a0»\u00a0: oui\u202f?" in out
    assert "<code>a : b</code>" in out and "x : y</annotation>" in out


def test_heading_ids_are_unique_on_a_page() -> None:
    ids, toc = Ids(), []
    first = markdown_to_html("## Résumé\n\n### Détails", SiteFiles(), ids, toc)
    second = markdown_to_html("## Résumé", SiteFiles(), ids, toc)
    assert 'id="résumé"' in first and 'id="résumé-2"' in second
    assert [(h.level, h.id) for h in toc] == [(2, "résumé"), (3, "détails"), (2, "résumé-2")]


def test_links_and_missing_image(tmp_path: Path) -> None:
    files = SiteFiles(notebook_dir=tmp_path, section="s")
    link = markdown_to_html("[suite](autre.ipynb#eq_x) [web](https://example.org)", files, Ids())
    assert 'href="autre.html#eq_x"' in link and 'href="https://example.org"' in link
    markdown_to_html("![x](img/absente.svg)", files, Ids())
    assert files.warnings == ["s: fichier introuvable : img/absente.svg"]


def test_render_output_kinds() -> None:
    files = SiteFiles(section="s")
    data = {"output_type": "display_data", "data": {"image/svg+xml": SVG_FIGURE}}
    svg = render_output(data, files)
    (name,) = files.files
    assert name.startswith("s_files/") and name.endswith(".svg") and name in svg
    trace = ["\x1b[31mE\x1b[0m: v"]
    err = render_output({"output_type": "error", "ename": "E", "traceback": trace}, files)
    assert "\x1b" not in err and "E: v" in err and "Erreur" in err
    text = render_output({"output_type": "stream", "name": "stderr", "text": "<b>"}, files)
    assert text == '<pre class="output stream stderr">&lt;b&gt;</pre>'


# ---------------------------------------------------------------------------- whole site
class _Page(HTMLParser):
    """Ids and local links of one HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        for name in ("href", "src"):
            value = attrs.get(name)
            if value and "://" not in value:
                self.links.append(value)


def check_site_links(site: Path) -> None:
    """Every id unique on its page; every local link and fragment resolves (files too)."""
    pages = {p.name: _Page(p.read_text(encoding="utf-8")) for p in site.glob("*.html")}
    for name, page in pages.items():
        duplicates = sorted({i for i in page.ids if page.ids.count(i) > 1})
        assert not duplicates, f"{name}: duplicate ids {duplicates}"
        for link in page.links:
            path, _, fragment = link.partition("#")
            path = path.split("?")[0]
            target = path or name
            assert (site / target).is_file(), f"{name}: {link} -> no file"
            if fragment:
                assert fragment in pages[target].ids, f"{name}: {link} -> no such id"


def _snapshot(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_render_site_is_complete_and_deterministic(book, tmp_path: Path) -> None:
    executed, chapters = book
    site = tmp_path / "site"
    written = render(executed, site, SECTIONS, FRAMEWORKS, chapters)
    files = _snapshot(site)
    assert sorted(written) == sorted(site / name for name in files)
    wheel = f"downloads/{shim_wheel_name()}"
    for name in ("index.html", "deep-rnn.html", "intro.html", "img/deep-rnn.svg", "book.js",
                 "notebooks/pytorch/deep-rnn.ipynb", "notebooks/pytorch/img/deep-rnn.svg",
                 "downloads/notebooks-mxnet.zip", wheel):  # fmt: skip
        assert name in files, name
    assert "notebooks/tensorflow/intro.ipynb" not in files
    assert len([n for n in files if n.startswith("deep-rnn_files/")]) == 2  # two plots
    check_site_links(site)
    page = files["deep-rnn.html"].decode()
    assert page.count("Implémentation concise</h2>") == 1
    assert page.count("Un paragraphe commun") == 1
    assert "<title>Réseaux de neurones récurrents profonds — " in page
    assert page.count("<math") >= 6 and '<span class="eqno">(2.1)</span>' in page
    assert (
        '<figure id="fig_deep_rnn"><img src="img/deep-rnn.svg" alt="Un RNN profond à L couches.">'
        in page
    )
    assert '<span class="target-number">Figure 2.1</span>&nbsp;: Un RNN profond à <math' in page
    assert '<span class="equation" id="eq_deep_rnn_H">' in page
    assert page.count('role="tablist"') == 3
    assert 'class="page-toc"' in page and 'href="#implémentation-concise"' in page
    assert 'href="notebooks/mxnet/deep-rnn.ipynb" download' in page
    assert "Notebook généré" not in page and "%%tab" not in page and "Mise en place" not in page
    assert "https://" not in page and "http://" not in page.replace("http://www.w3.org/", "")
    assert 'href="deep-rnn.html#sec_deep_rnn"' in files["intro.html"].decode()
    index = files["index.html"].decode()
    assert "<h1>Un livre d'essai</h1>" in index
    assert "Une <em>introduction</em> au livre" in index
    assert index.index("Introduction") < index.index("Réseaux de neurones récurrents profonds")
    # Second render: same bytes, nothing rewritten; elsewhere: same bytes too.
    mtimes = {p: p.stat().st_mtime_ns for p in written}
    assert render(executed, site, SECTIONS, FRAMEWORKS, chapters) == written
    assert _snapshot(site) == files
    assert {p: p.stat().st_mtime_ns for p in written} == mtimes
    render(executed, tmp_path / "site2", SECTIONS, FRAMEWORKS, chapters)
    assert _snapshot(tmp_path / "site2") == files


def test_a_new_render_removes_what_the_site_no_longer_has(book, tmp_path: Path) -> None:
    executed, chapters = book
    site = tmp_path / "site"
    render(executed, site, SECTIONS, FRAMEWORKS, chapters)
    figures = sorted(p.name for p in (site / "deep-rnn_files").iterdir())
    (site / "notes.txt").write_text("à moi")  # not the renderer's: kept
    nb = _notebook(executed, "pytorch")
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "image/svg+xml" in out.get("data", {}):
                out["data"]["image/svg+xml"] = SVG_FIGURE  # another training curve
    (executed / "pytorch" / "deep-rnn.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    render(executed, site, ["deep-rnn"], FRAMEWORKS, chapters)
    assert sorted(p.name for p in (site / "deep-rnn_files").iterdir()) != figures
    assert len(list((site / "deep-rnn_files").iterdir())) == 2
    assert not (site / "intro.html").exists()
    assert not (site / "notebooks/pytorch/intro.ipynb").exists()
    assert (site / "notes.txt").read_text() == "à moi"


def test_section_missing_in_a_framework(book, tmp_path: Path) -> None:
    executed, chapters = book
    render(executed, tmp_path / "site", SECTIONS, FRAMEWORKS, chapters)
    page = html.unescape((tmp_path / "site" / "intro.html").read_text())
    assert 'role="tab" id="g1-mxnet"' in page and 'role="tab" id="g1-tensorflow"' not in page
    assert "Cette section n'existe pas en TensorFlow" in page
    assert 'data-framework="tensorflow"' in page  # the picker keeps every framework
    index = (tmp_path / "site" / "index.html").read_text()
    assert "(absente en TensorFlow)" in index


def test_archives_hold_the_notebooks_and_the_wheel(book, tmp_path: Path) -> None:
    executed, chapters = book
    render(executed, tmp_path / "site", SECTIONS, FRAMEWORKS, chapters)
    wheel = shim_wheel_name()
    with zipfile.ZipFile(tmp_path / "site/downloads/notebooks-tensorflow.zip") as zf:
        assert zf.namelist() == [
            f"notebooks-tensorflow/{wheel}",
            "notebooks-tensorflow/deep-rnn.ipynb",
            "notebooks-tensorflow/img/deep-rnn.svg",
        ]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with zipfile.ZipFile(tmp_path / "site/downloads/notebooks-pytorch.zip") as zf:
        assert "notebooks-pytorch/intro.ipynb" in zf.namelist()


def test_shim_wheel_is_a_valid_wheel() -> None:
    name, data = shim_wheel()
    assert name == shim_wheel_name() and shim_wheel() == (name, data)  # stable bytes
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as zf:
        names = zf.namelist()
        assert "d2l_shim/__init__.py" in names and "d2l_shim/_common/text.py" in names
        dist = name.split("-py3-")[0] + ".dist-info"
        metadata = zf.read(f"{dist}/METADATA").decode()
        torch_pin = tomllib.loads(
            (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
        )["project"]["optional-dependencies"]["torch"][0]
        assert "Name: d2l-shim" in metadata
        assert f'Requires-Dist: {torch_pin}; extra == "torch"' in metadata
        requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if "Dist:" in line]
        assert all(Requirement(r) for r in requires)  # pip parses each one
        assert "Requires-Dist: mxnet==1.9.1; (python_version < '3.12') and extra" in metadata
        record = zf.read(f"{dist}/RECORD").decode().splitlines()
        assert sorted(r.split(",")[0] for r in record) == sorted(names)
        assert all(re.fullmatch(r"[^,]+,sha256=[\w-]{43},\d+", r) for r in record[:-1])


def test_render_refuses_a_section_without_notebooks(book, tmp_path: Path) -> None:
    executed, chapters = book
    with pytest.raises(PagesError, match="section absent: no executed notebook"):
        render(executed, tmp_path / "site", ["absent"], FRAMEWORKS, chapters)


def test_main_in_process(book, tmp_path: Path, capsys) -> None:
    from book.pages import main

    executed, chapters = book
    site = tmp_path / "site"
    assert main([str(executed), str(site), "--chapters", str(chapters)]) == 0
    assert "3 pages" in capsys.readouterr().out
    assert main([str(tmp_path / "absent"), str(site)]) == 2


def test_site_figures_are_linked_not_read_whole(tmp_path: Path, monkeypatch) -> None:
    from book.pages.files import write_site

    figure = tmp_path / "big.png"
    with figure.open("wb") as handle:
        handle.truncate(3 << 20)  # sparse: 3 MB that take no room
    read_bytes = Path.read_bytes

    def no_whole_figure(path: Path) -> bytes:
        assert path != figure, f"{path} read whole into memory"
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", no_whole_figure)
    site = tmp_path / "site"
    write_site(site, {"s_files/big.png": figure, "s.html": b"<p>x</p>"})
    assert (site / "s_files/big.png").samefile(figure)
    assert (site / "s.html").read_bytes() == b"<p>x</p>"
