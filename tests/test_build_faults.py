"""build.py under faults: images out of the book, odd --out folders, killed builds, prose edits.

No kernel here: the execution is replaced by a fake that records its calls (the real one is
tested in test_build_exec.py), so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import build
from book import roles

SHIM = Path(__file__).parent / "fixtures" / "shim"
CELL = "```{.python .input}\n%%tab all\nx = 1\n```\n"


def run_main(args: list[str], chapters: Path) -> int:
    return build.main([*args, "--chapters", str(chapters), "--shim", str(SHIM)])


def book(tmp_path: Path, text: str, name: str = "s.md") -> tuple[Path, Path]:
    """A book of one chapter (and its img/ folder); returns (chapters, out)."""
    chapters = tmp_path / "chapters"
    (chapters / "img").mkdir(parents=True, exist_ok=True)
    (chapters / name).write_text(text)
    return chapters, tmp_path / "out"


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def fake_kernel(monkeypatch):
    """book.execute.run replaced: every code cell prints "ran"; the calls are listed."""
    calls: list[str] = []

    def run(nb, cwd, env, timeout, report=None, begin=None, kernels=None):
        calls.append(nb["metadata"]["d2l"]["source"])
        executed = nbformat.reads(json.dumps(nb), as_version=4)
        for count, cell in enumerate(c for c in executed.cells if c.cell_type == "code"):
            output = {"name": "stdout", "output_type": "stream", "text": "ran\n"}
            cell.outputs, cell.execution_count = [nbformat.from_dict(output)], count + 1
        return executed

    monkeypatch.setattr("book.execute.run", run)
    return calls


# --- images: inside the chapter's folder, one name each, never written outside --out --------


def test_absolute_image_path_never_overwrites_a_file_outside_out(tmp_path, capsys):
    """`/x/link/../victim.svg` read /x/deep/victim.svg and was "copied" onto /x/victim.svg."""
    outside = tmp_path / "outside"
    (outside / "deep" / "dir").mkdir(parents=True)
    (outside / "victim.svg").write_text("precious")
    (outside / "deep" / "victim.svg").write_text("other")
    (outside / "link").symlink_to(outside / "deep" / "dir")
    src = f"{outside}/link/../victim.svg"
    chapters, out = book(tmp_path, f"# T\n\n![A]({src})\n")
    assert run_main(["notebooks", "--out", str(out)], chapters) == 1
    err = capsys.readouterr().err
    assert f"{chapters / 's.md'}:3: image path must be relative to the chapter's folder" in err
    assert (outside / "victim.svg").read_text() == "precious" and not out.exists()


def test_image_with_the_name_of_another_folders_image_is_an_error(tmp_path, capsys):
    """`img/f.svg` of a chapter and of a draft elsewhere would share notebooks/*/img/f.svg."""
    chapters, out = book(tmp_path, "# T\n\n![A](img/f.svg)\n")
    (chapters / "img" / "f.svg").write_text("<svg>chapter</svg>")
    draft = tmp_path / "o" / "d.md"
    (draft.parent / "img").mkdir(parents=True)
    (draft.parent / "img" / "f.svg").write_text("<svg>draft</svg>")
    draft.write_text("# D\n\nTexte.\n\n![B](img/f.svg)\n")
    args = ["notebooks", "--out", str(out), str(chapters / "s.md"), str(draft)]
    assert run_main(args, chapters) == 1
    err = capsys.readouterr().err
    assert f"{draft}:5: image img/f.svg has the name of another image" in err
    assert f"{chapters / 's.md'}:3" in err and not out.exists()


def test_images_keep_their_path_in_the_chapter_folder(tmp_path, capsys):
    chapters, out = book(tmp_path, "# T\n\n![A](img/a/f.svg)\n\n![B](./img/b/../b/f.svg)\n")
    for sub in ("a", "b"):
        (chapters / "img" / sub).mkdir()
        (chapters / "img" / sub / "f.svg").write_text(f"<svg>{sub}</svg>")
    assert run_main(["notebooks", "--framework", "mxnet", "--out", str(out)], chapters) == 0
    nb = json.loads((out / "notebooks/mxnet/s.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"])
    assert "![A](img/a/f.svg)" in text and "![B](img/b/f.svg)" in text
    for sub in ("a", "b"):
        assert (out / f"notebooks/mxnet/img/{sub}/f.svg").read_text() == f"<svg>{sub}</svg>"


def test_symlinked_chapter_is_built_under_its_own_name(tmp_path, capsys):
    """chapters/alias.md -> ../drafts/real.md: the notebook is alias.ipynb (as in the table of
    contents) and its images are the ones beside the link."""
    chapters, out = book(tmp_path, "# Intro\n\n:numref:`sec_alias`\n", "intro.md")
    (chapters / "img" / "f.svg").write_text("<svg/>")
    (chapters / "index.md").write_text("# Livre\n\n```toc\nalias\nintro\n```\n")
    real = tmp_path / "drafts" / "real.md"
    real.parent.mkdir()
    real.write_text("# Alias\n:label:`sec_alias`\n\n![A](img/f.svg)\n")
    (chapters / "alias.md").symlink_to(real)
    assert run_main(["notebooks", "--framework", "pytorch", "--out", str(out)], chapters) == 0
    assert files_under(out / "notebooks") == [
        "pytorch/alias.ipynb",
        "pytorch/img/f.svg",
        "pytorch/intro.ipynb",
    ]
    nb = json.loads((out / "notebooks/pytorch/alias.ipynb").read_text())
    assert nb["metadata"]["d2l"]["source"] == str(chapters / "alias.md")


def test_large_images_are_linked_never_read_into_memory(tmp_path, capsys, monkeypatch):
    chapters, out = book(tmp_path, "# T\n\n![A](img/big.png)\n")
    big = chapters / "img" / "big.png"
    with big.open("wb") as handle:
        handle.truncate(3 << 20)  # sparse: 3 MB that take no room
    monkeypatch.setattr(roles, "LARGE_IMAGE", 1 << 20)
    read_bytes = Path.read_bytes

    def no_whole_image(path: Path) -> bytes:
        assert path.suffix != ".png", f"{path} read whole into memory"
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", no_whole_image)
    args = ["notebooks", "--framework", "pytorch", "--out", str(out)]
    assert run_main(args, chapters) == 0
    err = capsys.readouterr().err
    assert f"{chapters / 's.md'}:3: warning: image img/big.png is 3 MB; no figure needs" in err
    copy = out / "notebooks/pytorch/img/big.png"
    assert os.path.samefile(copy, big)  # a hard link: no byte copied
    assert run_main(args, chapters) == 0  # unchanged: nothing rewritten
    assert os.path.samefile(copy, big)

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)  # another file system: streamed
    copy.unlink()
    assert run_main(args, chapters) == 0
    assert not os.path.samefile(copy, big) and copy.stat().st_size == 3 << 20


# --- --out: checked before anything is written ----------------------------------------------


@pytest.mark.parametrize(
    ("out", "fragment"),
    [
        ("file", "file is not a folder"),
        ("file/sub/out", "file is not a folder"),
        ("/sys/d2l-build-out", "cannot write in /sys"),  # read-only even for root
    ],
)
def test_impossible_out_is_a_clear_error(tmp_path, capsys, out, fragment):
    if out.startswith("/sys") and not Path("/sys/kernel").is_dir():
        pytest.skip("no /sys here")
    chapters, _ = book(tmp_path, "# T\n" + CELL)
    (tmp_path / "file").write_text("a file")
    for command in ("notebooks", "list", "execute", "all"):
        assert run_main([command, "--out", str(tmp_path / out)], chapters) == 1
        err = capsys.readouterr().err
        assert f"error: --out {tmp_path / out}: " in err and fragment in err, err
        assert "nothing written" in err and "Traceback" not in err
    assert (tmp_path / "file").read_text() == "a file"
    assert files_under(tmp_path) == ["chapters/s.md", "file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
@pytest.mark.parametrize("folder", [".", "notebooks/pytorch"])
def test_read_only_out_is_a_clear_error(tmp_path, capsys, folder):
    chapters, out = book(tmp_path, "# T\n" + CELL)
    (out / folder).mkdir(parents=True, exist_ok=True)
    (out / folder).chmod(0o555)
    try:
        assert run_main(["notebooks", "--out", str(out)], chapters) == 1
    finally:
        (out / folder).chmod(0o755)
    err = capsys.readouterr().err
    assert f"cannot write in {(out / folder).resolve()}" in err and "nothing written" in err
    assert files_under(out) == []


# --- temp files of a killed build: removed, never picked up ---------------------------------


def test_temp_files_of_a_killed_build_are_never_picked_up(tmp_path, capsys, fake_kernel):
    chapters, out = book(tmp_path, "# T\n" + CELL)
    args = ["execute", "--framework", "pytorch", "--out", str(out)]
    assert run_main(args, chapters) == 0
    gone = _dead_pid()
    left = out / f"notebooks/pytorch/.s.ipynb.{gone}.k2j4h5g6.tmp"  # as SIGKILL leaves it
    left.write_text("{half a notebook")
    old = out / "notebooks/pytorch/img/.f.svg.x8d6r0qa.tmp"  # an hour-old one, no pid
    old.parent.mkdir()
    old.write_text("<svg")
    os.utime(old, (time.time() - 7200,) * 2)
    live = out / f"notebooks/pytorch/img/.f.svg.{os.getpid()}.abcdefgh.tmp"  # being written
    live.write_text("<svg")
    (chapters / "s.md").write_text("# T\n" + CELL.replace("x = 1", "x = 2"))
    assert run_main(args, chapters) == 0
    assert "removed 2 temp file(s) left by an interrupted build" in capsys.readouterr().err
    assert files_under(out / "notebooks") == [f"pytorch/img/{live.name}", "pytorch/s.ipynb"]
    assert files_under(out / "executed") == ["pytorch/s.ipynb"]  # none copied


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- prose edits: new prose and figures on the pages, no kernel -----------------------------

PROSE = "# T\n\nAncienne prose.\n\n" + CELL


def test_prose_edit_reaches_the_pages_without_a_kernel(tmp_path, capsys, fake_kernel):
    chapters, out = book(tmp_path, PROSE)
    args = ["all", "--framework", "pytorch", "--out", str(out)]
    assert run_main(args, chapters) == 0
    assert len(fake_kernel) == 1
    executed = out / "executed/pytorch/s.ipynb"
    key = json.loads(executed.read_text())["metadata"]["d2l"]["cache_key"]

    (chapters / "img" / "new.svg").write_text("<svg>nouvelle</svg>")
    text = PROSE.replace("Ancienne prose.", "Ligne.\n\nNouvelle prose.\n\n![F](img/new.svg)")
    (chapters / "s.md").write_text(text)
    assert run_main(args, chapters) == 0
    assert len(fake_kernel) == 1  # no kernel for a prose edit
    assert "prose or figures updated, code unchanged, cached" in capsys.readouterr().err
    nb = json.loads(executed.read_text())
    assert nb["metadata"]["d2l"]["cache_key"] == key
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert "Ancienne" not in "".join(sources) and "Nouvelle prose." in "".join(sources)
    (code,) = [c for c in nb["cells"] if c["cell_type"] == "code" and c["source"] == "x = 1"]
    assert code["outputs"][0]["text"] == ["ran\n"] and code["metadata"]["d2l"]["line"] == 11
    assert (out / "executed/pytorch/img/new.svg").read_text() == "<svg>nouvelle</svg>"
    page = (out / "site" / "s.html").read_text()
    assert "Nouvelle prose." in page and "Ancienne" not in page and "img/new.svg" in page
    assert (out / "site/img/new.svg").is_file()

    before = executed.stat().st_mtime_ns
    assert run_main(args, chapters) == 0  # nothing changed: nothing rewritten
    assert ": unchanged, cached" in capsys.readouterr().err
    assert executed.stat().st_mtime_ns == before and len(fake_kernel) == 1


# --- --timeout ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_timeout_must_be_positive_or_none(capsys, value):
    with pytest.raises(SystemExit):
        build.parser().parse_args(["execute", "--timeout", value])
    err = capsys.readouterr().err
    assert f"--timeout: expected seconds >= 1, or 'none' for no limit, got '{value}'" in err


def test_timeout_none_means_no_limit():
    assert build.parser().parse_args(["execute", "--timeout", "none"]).timeout is None
    assert build.parser().parse_args(["execute", "--timeout", "60"]).timeout == 60
