"""One notebook per framework from a parsed chapter; deterministic bytes, atomic writes.

    build(section, framework, index, references) -> (notebook, images to copy)
    dumps(notebook) -> str                    same input, same bytes
    write_atomic(path, text)                  temp file + os.replace; untouched when equal
    copy_file(src, dest)                      the same for a file (hard link, or streamed)
    sweep_temp(folder)                        temp files left by a killed build: removed

Every cell has metadata `d2l: {source, line}` (the chapter line, for error reports); a cell
from the chapter also has `block` and `frameworks` (see `build`, the pages group cells by
them), the generated ones `generated` (header, setup); a cell marked output="check" also
has `d2l.key` (hash of its code), the key of its reference outputs in
`<chapter dir>/outputs/<stem>.<framework>.json`, which are put into the cell for nbval.
Cell ids are hashes of the content (plus a counter for duplicates).

Notebooks are plain dicts in nbformat 4.5 (importing nbformat costs over a second here because
of jsonschema's format checkers; the tests run nbformat.validate on every generated notebook).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from book import DISPLAY_NAME, DOWNLOADS, glue, shim_wheel_name
from book.branches import select
from book.roles import Index, convert, split_targets, target_meta
from book.source import Code, Line, Prose, Section

TAGS = {"check": ["nbval-check-output"], "ignore": ["nbval-ignore-output"]}

HEADER = """\
*Notebook généré à partir de `{source}` ({name}) : ne le modifiez pas, vos modifications \
seraient perdues. Modifiez le chapitre, puis lancez `python build.py notebooks`.*

*Generated from `{source}` ({name}): edit the chapter, not this notebook.*"""

# The set-up cell: where the book's environment is absent (Colab, any other Jupyter), it
# installs the shim's wheel, from beside the notebook (a downloaded archive) or from the site.
SETUP = """\
# Mise en place. Les figures matplotlib s'affichent dans le notebook (sinon,
# avec IPython 9 et matplotlib 3.7, plt.show() n'affiche que leur description).
%matplotlib inline
import importlib.util
import pathlib
import subprocess
import sys

if importlib.util.find_spec("d2l_shim") is None:
    # Bibliothèque du livre absente (Colab, autre Jupyter) : on installe
    # sa roue, posée à côté du notebook (archive téléchargée) ou prise sur
    # le site du livre.
    wheel = pathlib.Path("{wheel}")
    site = {site}
    if wheel.is_file():
        source = str(wheel)
    elif site:
        source = f"{site}/{downloads}/{wheel.name}"
    else:
        raise RuntimeError(
            f"d2l_shim est introuvable : placez {wheel} à côté de ce "
            "notebook (archive du framework sur le site du livre) "
            "ou installez-le avec pip."
        )
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, source], check=True)
    importlib.invalidate_caches()"""


def setup_code(site_url: str | None) -> str:
    """The set-up cell; `site_url` is where the built site is served (None: no download)."""
    site = repr(site_url.rstrip("/")) if site_url else "None"
    return (
        SETUP.replace("{wheel}", shim_wheel_name(), 1)
        .replace("{site}", site, 1)
        .replace("{downloads}", DOWNLOADS)
    )


def cell_key(code: str, seen: dict[str, int] | None = None) -> str:
    """Stable key of a code cell: the hash of its (framework-resolved) code.

    With ``seen`` (hash -> count so far, updated here), the n-th cell with the same code gets
    the suffix ``-n`` (n >= 2), so identical cells keep separate reference outputs.
    """
    key = hashlib.sha1(code.encode("utf-8")).hexdigest()[:16]
    if seen is None:
        return key
    seen[key] = seen.get(key, 0) + 1
    return key if seen[key] == 1 else f"{key}-{seen[key]}"


def references_file(section: Section, framework: str) -> Path:
    return section.file.parent / "outputs" / f"{section.stem}.{framework}.json"


def load_references(file: Path) -> dict[str, list[dict[str, Any]]]:
    """{key: outputs} from a reference file; {} when there is none."""
    if not file.is_file():
        return {}
    data = json.loads(file.read_text(encoding="utf-8"))
    return {key: cell["outputs"] for key, cell in data["cells"].items()}


def load_glue(file: Path) -> dict[str, str]:
    """{name: text}: the glue values of the book's reference run in a reference file."""
    if not file.is_file():
        return {}
    return dict(json.loads(file.read_text(encoding="utf-8")).get("glue", {}))


def dumps_references(cells: dict[str, dict[str, Any]], glued: dict[str, str] | None = None) -> str:
    """The reference file: outputs of output="check" cells by key, and the glue values of the
    reference run by name (left out when there are none); sorted keys, same bytes each time."""
    data: dict[str, Any] = {"format": 1, "cells": cells}
    if glued:
        data["glue"] = glued
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


Notebook = dict[str, Any]


def markdown_cell(source: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": "", "metadata": metadata, "source": source}


def code_cell(source: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "",
        "metadata": metadata,
        "outputs": [],
        "source": source,
    }


def _meta(section: Section, line: int, **extra: Any) -> dict[str, Any]:
    return {"d2l": {"source": section.path, "line": line, **extra}}


def _origin(section: Section, block: int, line: int, frameworks: tuple[str, ...]) -> dict:
    return _meta(section, line, block=block, frameworks=list(frameworks))


def _prose_cells(
    section: Section, block: int, prose: Prose, idx: Index, values: dict[str, str]
) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """One prose block -> Markdown cells: a figure, table or equation gets a cell of its own.

    A cell naming glued values shows `values` (the reference run's) and keeps its Markdown
    with the roles in `metadata.d2l.glue`, for the executed notebook and the pages."""
    cells, images = [], []
    for chunk in split_targets(prose.lines, idx):
        lines = _squeeze_blank(chunk)
        text, found = convert(lines, section, idx)
        start = next((ln.number for ln in chunk if ln.text.strip()), None)
        if not text.strip() or start is None:
            continue
        images.extend(found)
        meta = _origin(section, block, start, prose.frameworks)
        roles = glue.roles(lines)
        if roles:
            text = text.strip("\n")
            meta["d2l"]["glue"] = {"markdown": text, "roles": [list(r) for r in roles]}
            text = glue.fill(text, values)
        target = target_meta(chunk, section, idx)
        if target:
            meta["d2l"]["target"] = target
        if found:
            meta["d2l"]["images"] = sorted({dest for _, dest in found})
        title = _title(chunk)
        if title:
            meta["d2l"]["title"] = title
        cells.append(markdown_cell(text.strip("\n"), metadata=meta))
    return cells, images


def _title(lines: list[Line]) -> str | None:
    """The text (Markdown) of the first `# ` heading among these lines."""
    for ln in lines:
        if not ln.verbatim and ln.text.startswith("# "):
            return ln.text[2:].strip().rstrip("#").strip()
    return None


def _squeeze_blank(lines: list[Line]) -> list[Line]:
    """Runs of blank prose lines -> one (verbatim lines are kept as they are)."""
    return [
        ln
        for k, ln in enumerate(lines)
        if ln.verbatim or ln.text.strip() or k == 0 or lines[k - 1].text.strip()
    ]


def build(
    section: Section,
    framework: str,
    idx: Index,
    references: dict[str, list[dict[str, Any]]] | None = None,
    site_url: str | None = None,
    glued: dict[str, str] | None = None,
) -> tuple[Notebook, list[tuple[Path, str]]]:
    """The notebook of `section` for `framework` (branches resolved, roles converted).

    Each chapter block gives its own cells (a prose block: one Markdown cell, plus one per
    figure, table or equation in it), so a cell never mixes blocks of different frameworks.
    `metadata.d2l` says where a cell comes from: source, line, block (its index in the
    chapter), frameworks (of the block), and `target` for a numbered figure/table/equation;
    `images` (beside the notebook) and `title` (a `# ` heading) where the cell has them. All
    of it lives on the cells: the notebook's own metadata is part of the execution cache key,
    which a prose edit must not change. `glued`: the reference run's glue values {name: text},
    shown in the prose (book/glue.py).
    """
    name = DISPLAY_NAME[framework]
    cells = [
        markdown_cell(
            HEADER.format(source=section.path, name=name),
            metadata=_meta(section, 1, generated="header"),
        ),
        code_cell(setup_code(site_url), metadata=_meta(section, 1, generated="setup")),
    ]
    images: list[tuple[Path, str]] = []
    seen_keys: dict[str, int] = {}
    for k, block in enumerate(section.blocks):
        if framework not in block.frameworks:
            continue
        if isinstance(block, Prose):
            prose, found = _prose_cells(section, k, block, idx, glued or {})
            cells.extend(prose)
            images.extend(found)
            continue
        assert isinstance(block, Code)
        code = select(block.code, framework)
        if not code.strip():
            continue
        meta = _origin(section, k, block.code_line, block.frameworks)
        if block.output == "check":
            meta["d2l"]["key"] = cell_key(code, seen_keys)
        cell = code_cell(code, metadata=meta)
        if block.output:
            cell["metadata"]["tags"] = TAGS[block.output]
        key = meta["d2l"].get("key")
        if key and references and key in references:
            cell["outputs"] = references[key]
            # nbval skips cells that look unrun: number it like a run from the top.
            cell["execution_count"] = sum(c["cell_type"] == "code" for c in cells)
        cells.append(cell)
    if any("glue" in c["metadata"]["d2l"] for c in cells):
        cells[0]["source"] += "\n\n" + glue.REFERENCE_NOTE
    _set_ids(cells)
    nb = {
        "cells": cells,
        "metadata": {
            "d2l": {"source": section.path, "framework": framework},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return nb, images


def _set_ids(cells: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for cell in cells:
        text = f"{cell['cell_type']}\0{cell['source']}"
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def _split(text: Any) -> Any:
    """Multi-line strings as lists of lines, as nbformat writes them."""
    if isinstance(text, str) and "\n" in text:
        return text.splitlines(keepends=True)
    return text


def _for_disk(nb: Notebook) -> Notebook:
    cells = []
    for cell in nb["cells"]:
        cell = {**cell, "source": _split(cell["source"])}
        if "outputs" in cell:
            cell["outputs"] = [_split_output(o) for o in cell["outputs"]]
        cells.append(cell)
    return {**nb, "cells": cells}


def _split_output(output: dict[str, Any]) -> dict[str, Any]:
    output = dict(output)
    if "text" in output:
        output["text"] = _split(output["text"])
    if "data" in output:
        output["data"] = {
            k: _split(v) if k.startswith("text/") or k.endswith("+xml") else v
            for k, v in output["data"].items()
        }
    return output


def dumps(nb: Notebook) -> str:
    """JSON text of a notebook as nbformat writes it: sorted keys, one-space indent."""
    return json.dumps(_for_disk(nb), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# Temp files are hidden and name the process writing them: `.x.ipynb.<pid>.<random>.tmp`. No
# step picks up a hidden file, and sweep_temp removes those of a process that no longer runs
# (a build killed with SIGKILL cannot clean up after itself), and any hour-old one.
TEMP = re.compile(r"^\..+\.\w{8}\.tmp$")
TEMP_PID = re.compile(r"\.(\d+)\.\w{8}\.tmp$")
LEFT_OVER_SECONDS = 3600  # no temp file takes that long to write


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def write_atomic(path: Path, data: str | bytes) -> bool:
    """Write through a temp file and os.replace; return False when the file was already equal."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_file() and path.read_bytes() == raw:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def copy_file(src: Path, dest: Path) -> bool:
    """Make ``dest`` a copy of ``src`` without reading it into memory: a hard link where the
    file system allows one, else a streamed copy; False when ``dest`` already was equal."""
    if dest.is_file() and (os.path.samefile(src, dest) or filecmp.cmp(src, dest, shallow=False)):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{_temp_prefix(dest)}{secrets.token_hex(4)}.tmp"
    try:
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_temp(folder: Path) -> list[Path]:
    """Remove the temp files left under ``folder`` by processes that are gone; return them."""
    removed = []
    for path in folder.rglob(".*.tmp") if folder.is_dir() else ():
        if not TEMP.match(path.name):
            continue
        pid = TEMP_PID.search(path.name)
        try:
            old = time.time() - path.stat().st_mtime > LEFT_OVER_SECONDS
            if old or (pid and not _running(int(pid.group(1)))):
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its writer has just renamed it
            continue
    return removed
