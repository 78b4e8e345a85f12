"""Data files: a local folder first, then a verified download into a per-user cache.

Every fault a user can meet (no network, a slow or broken server, a corrupt file, a cache
folder that cannot be written) is a ``DataError`` that names the URL or the folder and says
what to do. A download lands atomically: nothing half-written is ever left in the cache.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .hyperparams import check_positive

DATA_ENV = "D2L_DATA_DIR"
CACHE_ENV = "D2L_CACHE_DIR"
DEADLINE = 600.0  # seconds for a whole download (The Time Machine: 180 kB)
PROGRESS_EVERY = 5.0  # seconds between two progress lines
_NETWORK_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException)


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
    """A data file is missing, unreachable or corrupt, or its folder cannot be used."""


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


# ---- the cache folder ----------------------------------------------------------------------
def _file_in_the_way(folder: Path) -> Path | None:
    """The first existing path among ``folder`` and its parents, if it is not a folder."""
    for path in (folder, *folder.parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


def _folder_error(folder: Path, file: DataFile, error: OSError) -> DataError:
    """A DataError naming the unusable cache folder, why, and what to do."""
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        reason = f"{blocker} est un fichier, pas un dossier"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "écriture refusée (dossier en lecture seule ?)"
    else:
        reason = error.strerror or str(error)
    return DataError(
        f"dossier de cache {folder} inutilisable : {reason} ; choisissez un autre dossier "
        f"avec la variable d'environnement {CACHE_ENV}, ou téléchargez {file.url} et placez "
        f"{file.name} dans un dossier désigné par la variable d'environnement {DATA_ENV}"
    )


def _not_a_file(path: Path, file: DataFile) -> DataError:
    return DataError(
        f"{path} existe mais n'est pas un fichier (un dossier ?) : supprimez-le ou "
        f"renommez-le, puis {_where_to_put(file)}"
    )


def _cache_target(folder: Path, file: DataFile) -> Path:
    """Create ``folder`` if needed; the path where ``file`` will land, checked first."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way, no permission, read-only file system
        raise _folder_error(folder, file, e) from e
    target = folder / file.name
    if target.exists() and not target.is_file():
        raise _not_a_file(target, file)
    return target


# ---- the download --------------------------------------------------------------------------
def _size(num_bytes: float) -> str:
    return f"{num_bytes / 1000:.0f} ko" if num_bytes >= 1000 else f"{num_bytes:.0f} o"


class _Progress:
    """Progress on stderr: a line at the start, then one every ``PROGRESS_EVERY`` seconds."""

    def __init__(self, file: DataFile, target: Path, total: int | None):
        self.total, self.start = total, time.monotonic()
        self.last = self.start
        self._say(f"Téléchargement de {file.url} vers {target}")

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        share = _size(done)
        if self.total:
            share = f"{100 * done / self.total:.0f} % ({share} sur {_size(self.total)})"
        self._say(f"  {share}, {now - self.start:.0f} s")

    def finish(self, done: int) -> None:
        self._say(f"  terminé : {_size(done)} en {time.monotonic() - self.start:.1f} s")

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _receive(file: DataFile, out: BinaryIO, target: Path, timeout: float, deadline: float):
    """Stream ``file.url`` into ``out`` within ``deadline`` seconds; DataError on any fault.

    Each read waits at most ``timeout`` seconds, and ``read1`` returns whatever arrived, so
    a server that sends a few bytes per second is stopped soon after the deadline.
    """
    stop_at = time.monotonic() + deadline
    try:
        response = urllib.request.urlopen(file.url, timeout=min(timeout, deadline))
    except _NETWORK_ERRORS as e:
        raise DataError(
            f"impossible de télécharger {file.url} ({e}) ; {_where_to_put(file)}"
        ) from e
    with response:
        if response.status != 200:
            raise DataError(f"{file.url} : réponse HTTP {response.status}")
        total, done = _content_length(response), 0
        progress = _Progress(file, target, total)
        while True:
            try:
                block = response.read1(1 << 16)
            except _NETWORK_ERRORS as e:
                raise DataError(
                    f"téléchargement de {file.url} interrompu ({e}) ; {_where_to_put(file)}"
                ) from e
            if not block:
                break
            out.write(block)  # an OSError here is the folder's: the caller names it
            done += len(block)
            if time.monotonic() > stop_at:
                raise DataError(
                    f"{file.url} : téléchargement trop lent, arrêté après {deadline:g} s "
                    f"({_size(done)} reçus) ; {_where_to_put(file)}"
                )
            progress.update(done)
    if total is not None and done < total:
        raise DataError(
            f"{file.url} : connexion coupée après {done} octets sur {total} ; "
            f"réessayez, ou {_where_to_put(file)}"
        )
    progress.finish(done)


def download_to(
    file: DataFile, folder: Path, timeout: float = 60, deadline: float = DEADLINE
) -> Path:
    """Download ``file`` into ``folder`` atomically: status and SHA-1 checked before it lands.

    ``timeout``: seconds one read may wait; ``deadline``: seconds for the whole download
    (checked after each read, so it may be passed by at most one read's wait).
    """
    check_positive("timeout", timeout)
    check_positive("deadline", deadline)
    target = _cache_target(folder, file)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{file.name}.", suffix=".part")
    except OSError as e:
        raise _folder_error(folder, file, e) from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _receive(file, out, target, timeout, deadline)
        if sha1_of(tmp) != file.sha1:  # the .part file is removed below: name the URL
            raise DataError(
                f"{file.url} : le fichier téléchargé a une somme SHA-1 inattendue "
                f"(attendu {file.sha1}) ; {_where_to_put(file)}"
            )
        os.replace(tmp, target)
        return target
    except OSError as e:  # writing the .part file or moving it: disk full, permissions
        raise _folder_error(folder, file, e) from e
    finally:
        tmp.unlink(missing_ok=True)


def fetch(file: DataFile, timeout: float = 60, deadline: float = DEADLINE) -> Path:
    """Path of a verified local copy of ``file``; downloads it into the cache when needed."""
    local = os.environ.get(DATA_ENV)
    if local:
        candidate = Path(local) / file.name
        if candidate.is_file():
            return _checked(candidate, file)
        if candidate.exists():  # a folder with the file's name: not what the user meant
            raise _not_a_file(candidate, file)
    cached = cache_dir() / file.name
    if cached.is_file():
        return _checked(cached, file)
    return download_to(file, cache_dir(), timeout, deadline)
