"""Glued values on the pages: shared prose shows each framework's value (switched like the tabs,
book.js `data-show-for`), prose of one framework its own, a numbered table its values too."""

from __future__ import annotations

import json
import re
from pathlib import Path

from book import FRAMEWORKS, glue, roles
from book.notebook import build, dumps
from book.pages import render
from book.source import load

FENCE = "```"
CHAPTER = f"""# Glue

{FENCE}{{.python .input}}
%%tab all
d2l.glue('val_ppl', ppl, fmt='.2f')
d2l.glue('n_params', n, fmt=',d')
{FENCE}

La perplexité vaut :glue:`val_ppl` pour :glue:`n_params` paramètres.

:begin_tab:`mxnet`
En MXNet seulement : :glue:`val_ppl`.
:end_tab:

| modèle | perplexité |
|---|---|
| GRU | :glue:`val_ppl` |
:label:`tab_glue`
"""
VALUES = {
    "pytorch": {"val_ppl": "6,26", "n_params": "13\u202f212"},
    "tensorflow": {"val_ppl": "6,36", "n_params": "13\u202f212"},
    "mxnet": {"val_ppl": "6,63", "n_params": "13\u202f212"},
}


def executed_book(root: Path, frameworks=FRAMEWORKS) -> tuple[Path, Path]:
    """Chapter and executed notebooks (outputs as d2l.glue writes them), as build.py leaves them."""
    chapters = root / "chapters"
    chapters.mkdir(parents=True)
    (chapters / "glue.md").write_text(CHAPTER, encoding="utf-8")
    section = load(chapters / "glue.md", "chapters/glue.md")
    for fw in frameworks:
        nb, _ = build(section, fw, roles.index([section]))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"][1]
        code["outputs"] = [
            {"output_type": "display_data", "metadata": {}, "data": {
                "text/plain": f"{name} = {text}", glue.MIME: {"name": name, "text": text}}}
            for name, text in VALUES[fw].items()
        ]  # fmt: skip
        assert glue.apply(nb) == []
        (root / "executed" / fw).mkdir(parents=True)
        (root / "executed" / fw / "glue.ipynb").write_text(dumps(nb), encoding="utf-8")
    return root / "executed", chapters


def paragraphs(page: str) -> list[str]:
    return re.findall(r"<p>(.*?)</p>", page, re.S)


def test_shared_prose_shows_each_frameworks_value(tmp_path: Path) -> None:
    executed, chapters = executed_book(tmp_path)
    render(executed, tmp_path / "site", ["glue"], FRAMEWORKS, chapters)
    page = (tmp_path / "site" / "glue.html").read_text(encoding="utf-8")
    shared = next(p for p in paragraphs(page) if p.startswith("La perplexité"))
    spans = re.findall(r'<span class="glue"([^>]*)>([^<]*)</span>', shared)
    per_fw = [(re.search(r'data-show-for="(\w+)"', a), " hidden" in a, t) for a, t in spans[:3]]
    assert [(m.group(1), hidden, t) for m, hidden, t in per_fw] == [
        ("pytorch", False, "6,26"),  # the first framework visible without JavaScript
        ("tensorflow", True, "6,36"),
        ("mxnet", True, "6,63"),
    ]
    # the same value everywhere: one span, shown whatever the framework
    assert len(spans) == 4 and "data-show-for" not in spans[3][0] and spans[3][1] == "13\u202f212"
    assert "PyTorch, TensorFlow, MXNet" in spans[3][0]
    # prose of one framework: its own value only
    (tab,) = [p for p in paragraphs(page) if p.startswith("En MXNet")]
    assert re.fullmatch(
        r'En MXNet seulement\xa0: <span class="glue" title="[^"]*\(MXNet\)">6,63</span>.', tab
    )
    # a numbered table: values from its metadata, per framework as well
    table = page[page.index('id="tab_glue"') :]
    table = table[: table.index("</figure>")]
    assert ">6,26</span>" in table and ">6,36</span>" in table and ":glue:" not in table
    assert ":glue:" not in page


def test_a_framework_without_a_notebook_shows_the_placeholder(tmp_path: Path) -> None:
    executed, chapters = executed_book(tmp_path, frameworks=("pytorch", "tensorflow"))
    render(executed, tmp_path / "site", ["glue"], FRAMEWORKS, chapters)
    page = (tmp_path / "site" / "glue.html").read_text(encoding="utf-8")
    shared = next(p for p in paragraphs(page) if p.startswith("La perplexité"))
    assert re.search(r'data-show-for="mxnet"[^>]*hidden><code>val_ppl</code></span>', shared)


def test_the_executed_notebooks_show_their_own_values(tmp_path: Path) -> None:
    executed, _ = executed_book(tmp_path)
    for fw in FRAMEWORKS:
        nb = json.loads((executed / fw / "glue.ipynb").read_text(encoding="utf-8"))
        prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert f"La perplexité vaut {VALUES[fw]['val_ppl']} pour" in prose
