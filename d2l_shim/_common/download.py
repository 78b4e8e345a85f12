"""Data files: a local folder first, then a verified download into a per-user cache."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "D2L_DATA_DIR"
CACHE_ENV = "D2L_CACHE_DIR"


@dataclass(frozen=True)
class DataFile:
    """A file the book downloads: its name, where it comes from, its SHA-1."""

    name: str
    url: str
    sha1: str


TIME_MACHINE = DataFile(
    "timemachine.txt",
    "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",
    "090b5e7e70c295757f55df93cb0a180b9691891a",
)


class DataError(RuntimeError):
    """A data file is missing, unreachable or corrupt."""


def cache_dir() -> Path:
    """The per-user cache folder: $D2L_CACHE_DIR, else $XDG_CACHE_HOME/d2l-shim, else ~/.cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "d2l-shim"


def sha1_of(path: Path) -> str:
    """SHA-1 of a file, read in blocks."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _where_to_put(file: DataFile) -> str:
    return (
        f"téléchargez {file.url} et placez {file.name} dans {cache_dir()}, "
        f"ou dans un dossier désigné par la variable d'environnement {DATA_ENV}"
    )


def _checked(path: Path, file: DataFile) -> Path:
    if sha1_of(path) != file.sha1:
        raise DataError(
            f"{path} : somme SHA-1 inattendue (attendu {file.sha1}) ; "
            f"fichier corrompu ou différent, supprimez-le puis {_where_to_put(file)}"
        )
    return path


def download_to(file: DataFile, folder: Path, timeout: float = 60) -> Path:
    """Download ``file`` into ``folder`` atomically: status and SHA-1 checked before it lands."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file.name
    print(f"Téléchargement de {file.url} vers {target}")
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{file.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(file.url, timeout=timeout) as response:
                    if response.status != 200:
                        raise DataError(f"{file.url} : réponse HTTP {response.status}")
                    while block := response.read(1 << 16):
                        out.write(block)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                raise DataError(
                    f"impossible de télécharger {file.url} ({e}) ; {_where_to_put(file)}"
                ) from e
        if sha1_of(tmp) != file.sha1:  # the .part file is removed below: name the URL
            raise DataError(
                f"{file.url} : le fichier téléchargé a une somme SHA-1 inattendue "
                f"(attendu {file.sha1}) ; {_where_to_put(file)}"
            )
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def fetch(file: DataFile) -> Path:
    """Path of a verified local copy of ``file``; downloads it into the cache when needed."""
    local = os.environ.get(DATA_ENV)
    if local:
        candidate = Path(local) / file.name
        if candidate.is_file():
            return _checked(candidate, file)
    cached = cache_dir() / file.name
    if cached.is_file():
        return _checked(cached, file)
    return download_to(file, cache_dir())
