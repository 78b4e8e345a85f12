"""Download and cache of the data files, against a local HTTP server (no internet)."""

import errno
import hashlib
import http.server
import os
import socket
import tempfile
import threading
import time

import pytest

from d2l_shim._common import download
from d2l_shim._common.download import DataError, DataFile, fetch

CONTENT = b"The Time Traveller (for so it will be convenient to speak of him)\n" * 50
SHA1 = hashlib.sha1(CONTENT).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/data/book.txt":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            self.wfile.write(CONTENT)
        elif self.path == "/data/truncated.txt":  # the connection drops half-way
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            self.wfile.write(CONTENT[: len(CONTENT) // 2])
            self.close_connection = True
        elif self.path in ("/data/slow.txt", "/data/slow-no-length.txt"):  # 100 B / 50 ms
            self.send_response(200)
            if "no-length" in self.path:  # the end of the body is where the connection closes
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            try:
                for start in range(0, len(CONTENT), 100):
                    self.wfile.write(CONTENT[start : start + 100])
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: expected
                pass
        else:
            self.send_error(404)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Reach the local server directly, even where a proxy is configured."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder; no local data folder."""
    monkeypatch.delenv(download.DATA_ENV, raising=False)
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block exits


def test_fetch_downloads_into_the_cache_atomically(server, cache, capsys):
    file = DataFile("book.txt", f"{server}/data/book.txt", SHA1)
    path = fetch(file)
    assert path == cache / "book.txt"
    assert path.read_bytes() == CONTENT
    assert sorted(p.name for p in cache.iterdir()) == ["book.txt"]  # no .part left
    out, err = capsys.readouterr()
    lines = err.splitlines()  # progress goes to stderr: a start line and an end line
    assert out == "" and len(lines) == 2
    assert file.url in lines[0] and str(path) in lines[0]
    assert "terminé" in lines[1] and "3 ko" in lines[1]
    # second call: served from the cache, no download
    assert fetch(file) == path
    assert capsys.readouterr() == ("", "")


def test_http_404_is_a_data_error_and_leaves_nothing(server, cache):
    file = DataFile("missing.txt", f"{server}/data/missing.txt", SHA1)
    with pytest.raises(DataError) as info:
        fetch(file)
    message = str(info.value)
    assert file.url in message
    assert "404" in message
    assert str(cache) in message and download.DATA_ENV in message  # where to put the file
    assert list(cache.iterdir()) == []


def test_wrong_sha1_is_a_data_error_and_leaves_nothing(server, cache):
    file = DataFile("book.txt", f"{server}/data/book.txt", "0" * 40)
    with pytest.raises(DataError, match="SHA-1") as info:
        fetch(file)
    assert file.url in str(info.value) and ".part" not in str(info.value)
    assert list(cache.iterdir()) == []


def test_truncated_download_is_a_data_error_and_leaves_nothing(server, cache):
    file = DataFile("truncated.txt", f"{server}/data/truncated.txt", SHA1)
    with pytest.raises(DataError) as info:
        fetch(file)
    assert file.url in str(info.value)
    assert list(cache.iterdir()) == []


def test_corrupt_file_in_the_data_folder(tmp_path, monkeypatch):
    (tmp_path / "book.txt").write_bytes(CONTENT[:-1])
    monkeypatch.setenv(download.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    file = DataFile("book.txt", "http://127.0.0.1:9/book.txt", SHA1)
    with pytest.raises(DataError, match="SHA-1") as info:
        fetch(file)
    assert str(tmp_path / "book.txt") in str(info.value)


def test_data_folder_is_used_first(tmp_path, monkeypatch):
    (tmp_path / "book.txt").write_bytes(CONTENT)
    monkeypatch.setenv(download.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    file = DataFile("book.txt", f"http://127.0.0.1:{_closed_port()}/book.txt", SHA1)
    assert fetch(file) == tmp_path / "book.txt"
    assert not (tmp_path / "cache").exists()


def test_data_folder_without_the_file_falls_back_to_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv(download.DATA_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    file = DataFile("book.txt", f"{server}/data/book.txt", SHA1)
    assert fetch(file) == tmp_path / "cache" / "book.txt"


def test_offline_gives_one_clear_error(cache):
    file = DataFile("book.txt", f"http://127.0.0.1:{_closed_port()}/book.txt", SHA1)
    with pytest.raises(DataError) as info:
        fetch(file)
    message = str(info.value)
    assert file.url in message
    assert str(cache) in message and download.DATA_ENV in message
    assert list(cache.iterdir()) == []


def test_time_machine_comes_from_the_data_folder():
    # conftest points D2L_DATA_DIR at the shared data: no network in the tests
    path = fetch(download.TIME_MACHINE)
    assert path.name == "timemachine.txt"
    assert download.sha1_of(path) == download.TIME_MACHINE.sha1


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv(download.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert download.cache_dir() == tmp_path / "d2l-shim"


# ---- slow servers: a total deadline, and progress without spam ------------------------------
def test_slow_download_reports_progress_a_few_times(server, cache, capsys, monkeypatch):
    monkeypatch.setattr(download, "PROGRESS_EVERY", 0.5)
    file = DataFile("book.txt", f"{server}/data/slow.txt", SHA1)
    assert fetch(file).read_bytes() == CONTENT  # 34 blocks over 1.7 s
    lines = capsys.readouterr().err.splitlines()
    steps = [line for line in lines if "%" in line]
    assert 2 <= len(steps) <= 4, lines  # every 0.5 s, not one line per block
    assert all(" sur 3 ko" in line for line in steps)
    assert file.url in lines[0] and "terminé" in lines[-1]


def test_progress_without_a_content_length(server, cache, capsys, monkeypatch):
    monkeypatch.setattr(download, "PROGRESS_EVERY", 0.5)
    file = DataFile("book.txt", f"{server}/data/slow-no-length.txt", SHA1)
    assert fetch(file).read_bytes() == CONTENT
    steps = capsys.readouterr().err.splitlines()[1:-1]
    assert steps and all(line.strip().endswith(" s") and "%" not in line for line in steps)


def test_total_deadline_stops_a_server_that_trickles(server, cache):
    file = DataFile("book.txt", f"{server}/data/slow.txt", SHA1)
    with pytest.raises(DataError) as info:
        fetch(file, deadline=0.3)  # the server needs 1.7 s: each read is quick, the whole not
    message = str(info.value)
    assert file.url in message and "0.3 s" in message
    assert str(cache) in message and download.DATA_ENV in message  # where to put the file
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(("name", "value"), [("deadline", 0), ("deadline", -1), ("timeout", 0)])
def test_bad_timeouts_name_the_parameter(cache, name, value):
    file = DataFile("book.txt", f"http://127.0.0.1:{_closed_port()}/book.txt", SHA1)
    with pytest.raises(ValueError, match=name):
        fetch(file, **{name: value})
    assert not cache.exists()


# ---- cache folders that cannot be used ------------------------------------------------------
def _assert_says_which_folder(info, folder):
    message = str(info.value)
    assert str(folder) in message
    assert download.CACHE_ENV in message and download.DATA_ENV in message  # what to do


def test_cache_path_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.delenv(download.DATA_ENV, raising=False)
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(DataError, match="est un fichier, pas un dossier") as info:
        fetch(DataFile("book.txt", f"http://127.0.0.1:{_closed_port()}/book.txt", SHA1))
    _assert_says_which_folder(info, tmp_path / "cache")


def test_cache_path_lies_under_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.delenv(download.DATA_ENV, raising=False)
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "file" / "sub" / "cache"))
    with pytest.raises(DataError, match=f"{tmp_path / 'file'} est un fichier") as info:
        fetch(DataFile("book.txt", f"http://127.0.0.1:{_closed_port()}/book.txt", SHA1))
    _assert_says_which_folder(info, tmp_path / "file" / "sub" / "cache")


def test_folder_named_like_the_file_in_the_cache(server, cache):
    (cache / "book.txt").mkdir(parents=True)
    file = DataFile("book.txt", f"{server}/data/book.txt", SHA1)
    with pytest.raises(DataError, match="n'est pas un fichier") as info:
        fetch(file)  # said before downloading anything
    assert str(cache / "book.txt") in str(info.value)
    assert [p.name for p in cache.iterdir()] == ["book.txt"]


def test_folder_named_like_the_file_in_the_data_folder(server, tmp_path, monkeypatch):
    (tmp_path / "data" / "book.txt").mkdir(parents=True)
    monkeypatch.setenv(download.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(DataError, match="n'est pas un fichier") as info:
        fetch(DataFile("book.txt", f"{server}/data/book.txt", SHA1))
    assert str(tmp_path / "data" / "book.txt") in str(info.value)


def test_read_only_cache(server, cache, monkeypatch):
    """As a user without write permission sees it (root writes anywhere: simulated)."""
    cache.mkdir()

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dir)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(DataError, match="lecture seule") as info:
        fetch(DataFile("book.txt", f"{server}/data/book.txt", SHA1))
    _assert_says_which_folder(info, cache)


def test_read_only_cache_for_real(server, cache):
    cache.mkdir()
    cache.chmod(0o555)
    try:
        if os.access(cache, os.W_OK) and os.geteuid() == 0:
            pytest.skip("root writes into read-only folders (see test_read_only_cache)")
        with pytest.raises(DataError, match="lecture seule") as info:
            fetch(DataFile("book.txt", f"{server}/data/book.txt", SHA1))
        _assert_says_which_folder(info, cache)
    finally:
        cache.chmod(0o755)


def test_disk_full_while_writing(server, cache, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DataError, match=os.strerror(errno.ENOSPC)) as info:
        fetch(DataFile("book.txt", f"{server}/data/book.txt", SHA1))
    _assert_says_which_folder(info, cache)
    assert list(cache.iterdir()) == []
