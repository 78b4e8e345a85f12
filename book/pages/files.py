"""The site's files besides the pages: assets, figures, notebooks, archives, the shim's wheel.

    SiteFiles            files one page needs (images beside the notebooks, output figures)
    shim_wheel(root)     the shim as a wheel (name, bytes), built here byte-for-byte stable
    archive(files)       a zip with fixed dates and order (same input, same bytes)
    write_site(dir, f)   every file written with book.notebook.write_atomic; files of an
                         earlier render that the site no longer has are removed

Downloads go to `downloads/` (book.DOWNLOADS): the wheel and one archive per framework, whose
folder holds every notebook of that framework, their images and the wheel (the notebooks'
set-up cell installs it from there when the shim is missing).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from book import DOWNLOADS, PROJECT_ROOT, project_table, shim_wheel_name
from book.notebook import copy_file, write_atomic

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: no build time inside


def html_name(section: str) -> str:
    return f"{section}.html"


def notebook_href(framework: str, section: str) -> str:
    return f"notebooks/{framework}/{section}.ipynb"


def archive_name(framework: str) -> str:
    return f"{DOWNLOADS}/notebooks-{framework}.zip"


@dataclass
class SiteFiles:
    """Files a page needs besides itself: site-relative path -> bytes (or a source file)."""

    notebook_dir: Path = Path(".")
    section: str = ""
    files: dict[str, bytes | Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def local_ref(self, ref: str) -> str:
        """Rewrite a relative link or image from a notebook: copy the file, `.ipynb` -> `.html`."""
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or ref.startswith(("/", "#")) or not parts.path:
            return ref
        path = unquote(parts.path)
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        if path.endswith(".ipynb"):
            return html_name(Path(path).stem) + fragment
        source = (self.notebook_dir / path).resolve()
        if not source.is_file():
            self.warnings.append(f"{self.section}: fichier introuvable : {path}")
            return ref
        try:
            rel = source.relative_to(self.notebook_dir.resolve()).as_posix()
        except ValueError:
            rel = f"img/{source.name}"
        self.files.setdefault(rel, source)
        return rel + fragment

    def output_file(self, data: bytes, ext: str) -> str:
        """Store a figure produced by a cell under a name derived from its content."""
        rel = f"{self.section}_files/{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        self.files[rel] = data
        return rel


def archive(files: dict[str, bytes]) -> bytes:
    """A zip of `files` (name -> bytes): sorted, fixed dates and modes, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    return buffer.getvalue()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _with_extra(requirement: str, extra: str) -> str:
    """`requirement` restricted to `extra`: its own environment marker, if any, kept."""
    spec, _, marker = requirement.partition(";")
    condition = f'extra == "{extra}"'
    if marker.strip():
        condition = f"({marker.strip()}) and {condition}"
    return f"{spec.strip()}; {condition}"


def _metadata(project: dict) -> str:
    """METADATA of the wheel. No Requires-Python: the set-up cell installs the shim, without
    its dependencies, into whatever Python the reader's Jupyter runs (Colab's included); the
    pins below are the book's tested environment, for a plain `pip install` of the wheel."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project['description']}",
        f"License: {project.get('license', {}).get('text', '')}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {_with_extra(dep, extra)}" for dep in deps]
    return "\n".join(lines) + "\n"


def shim_wheel(root: Path = PROJECT_ROOT) -> tuple[str, bytes]:
    """The shim package (root/d2l_shim, as pyproject.toml declares it) as a pure-Python wheel."""
    project = project_table(root)
    name = shim_wheel_name(project)
    dist_info = f"{name.split('-py3-')[0]}.dist-info"
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted((root / "d2l_shim").rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    files[f"{dist_info}/METADATA"] = _metadata(project).encode()
    wheel = "Wheel-Version: 1.0\nGenerator: book.pages\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/WHEEL"] = wheel.encode()
    record = [f"{rel},{_record_hash(data)},{len(data)}" for rel, data in sorted(files.items())]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    return name, archive(files)


def write_site(site_dir: Path, files: dict[str, bytes | Path]) -> list[Path]:
    """Write every file (site-relative name -> bytes or source file); return their paths.

    A file whose content did not change is not rewritten (its timestamp stays) but is listed.
    """
    written = []
    for rel in sorted(files):
        content = files[rel]
        if isinstance(content, Path):  # a figure: linked or streamed, never read whole
            copy_file(content, site_dir / rel)
        else:
            write_atomic(site_dir / rel, content)
        written.append(site_dir / rel)
    prune(site_dir, set(files))
    return written


def _ours(rel: str) -> bool:
    """A file the renderer makes: a page, a cell's figure, a notebook, a download."""
    top = rel.split("/", 1)[0]
    if "/" not in rel:
        return rel.endswith(".html")
    return top in ("notebooks", DOWNLOADS) or top.endswith("_files")


def prune(site_dir: Path, keep: set[str]) -> list[Path]:
    """Remove the renderer's files under site_dir that are not in `keep` (site-relative names):
    figures of a changed output, the page of a removed section. Other files stay."""
    removed = []
    for path in sorted(site_dir.rglob("*")):
        rel = path.relative_to(site_dir).as_posix()
        if path.is_file() and _ours(rel) and rel not in keep:
            path.unlink()
            removed.append(path)
    return removed
