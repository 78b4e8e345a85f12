"""The rendered pages in a real headless browser: Debian's Chromium driven by Playwright.

Renders the fixture notebooks of test_pages.py, serves them on 127.0.0.1 (and opens them from
file://), and checks what a reader sees: PyTorch tabs by default, one click switches every tab
group, the choice survives a reload, ?framework=mxnet selects, formulas are typeset, images load,
no request fails or leaves the machine. Saves a screenshot (to $D2L_SCREENSHOT_DIR when set).
No browser is ever downloaded: without /usr/bin/chromium the test is skipped.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from book import pages

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent (Debian: apt-get install -y chromium); page test skipped",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is absent")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_pages import write_fixture  # tests/ is on sys.path (rootdir conftest)

    root = tmp_path_factory.mktemp("pages")
    chapters = root / "chapters"
    chapters.mkdir()
    (chapters / "index.md").write_text("```toc\nintro\ndeep-rnn\n```\n", encoding="utf-8")
    pages.render(write_fixture(root / "executed"), root / "site", chapters)
    return root / "site"


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Requests:
    """Every request a page makes, and the ones that failed."""

    def __init__(self, page) -> None:
        self.urls: list[str] = []
        self.failed: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} {r.status}"))

    def check(self, prefix: str) -> None:
        assert not self.failed, self.failed
        outside = [u for u in self.urls if not u.startswith(prefix)]
        assert not outside, f"requests outside {prefix}: {outside}"


def selected(page) -> list[str]:
    """The framework shown by each tab group of the page, in page order."""
    return page.eval_on_selector_all(
        "[data-tabs]",
        """groups => groups.map(g => {
            const panels = [...g.querySelectorAll('[role=tabpanel]')].filter(p => !p.hidden);
            const tabs = [...g.querySelectorAll('[role=tab][aria-selected=true]')];
            if (panels.length !== 1 || tabs.length !== 1) return 'broken';
            const fw = panels[0].dataset.framework;
            return tabs[0].dataset.framework === fw && panels[0].offsetHeight > 0 ? fw : 'hidden';
        })""",
    )


def check_page_assets(page) -> None:
    broken = page.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"images not loaded: {broken}"


def test_tabs_math_and_requests_from_server(browser, server: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    requests = Requests(page)
    url = f"{server}/deep-rnn.html"
    page.goto(url, wait_until="load")

    # Default: PyTorch everywhere (both groups have it).
    assert selected(page) == ["pytorch", "pytorch"]
    assert page.locator(".picker [aria-pressed=true]").inner_text() == "PyTorch"

    # One click on TensorFlow in the first group switches every group; the second group has no
    # TensorFlow code, so it keeps PyTorch and says so in French.
    page.locator('[data-tabs] >> nth=0 >> [role=tab][data-framework="tensorflow"]').click()
    assert selected(page) == ["tensorflow", "pytorch"]
    note = page.locator("[data-tabs] >> nth=1 >> .tab-missing")
    assert note.is_visible() and "TensorFlow" in note.inner_text()
    assert "n'existe pas" in note.inner_text()
    assert page.locator(".picker [aria-pressed=true]").inner_text() == "TensorFlow"

    # Remembered across a reload and on another page.
    page.reload(wait_until="load")
    assert selected(page) == ["tensorflow", "pytorch"]
    page.goto(f"{server}/intro.html", wait_until="load")
    assert selected(page) == ["tensorflow"]

    # The URL parameter wins (and is remembered too).
    page.goto(f"{url}?framework=mxnet", wait_until="load")
    assert selected(page) == ["mxnet", "mxnet"]
    page.goto(url, wait_until="load")
    assert selected(page) == ["mxnet", "mxnet"]

    # Formulas typeset as MathML: boxes with real size; display math taller than text.
    sizes = page.eval_on_selector_all(
        "math",
        "ms => ms.map(m => { const r = m.getBoundingClientRect(); "
        "return [m.getAttribute('display'), r.width, r.height]; })",
    )
    assert len(sizes) >= 6
    assert all(w > 0 and h > 0 for _, w, h in sizes), sizes
    assert max(h for d, _, h in sizes if d == "block") > 1.5 * min(h for _, _, h in sizes)
    assert page.locator(".eqno").first.inner_text() == "(1)"
    assert page.locator("figure figcaption").first.is_visible()
    check_page_assets(page)

    # Back to PyTorch for a representative screenshot.
    page.locator('.picker [data-framework="pytorch"]').click()
    assert selected(page) == ["pytorch", "pytorch"]
    shot = tmp_path / "deep-rnn.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("D2L_SCREENSHOT_DIR"):
        target = Path(os.environ["D2L_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target / shot.name)
    page.goto(f"{server}/index.html", wait_until="load")
    titles = page.locator(".toc a").all_inner_texts()
    assert titles == ["Introduction", "Réseaux de neurones récurrents profonds"]
    requests.check(f"{server}/")
    context.close()


def test_tabs_from_file_url(browser, site: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    requests = Requests(page)
    page.goto((site / "deep-rnn.html").as_uri(), wait_until="load")
    assert selected(page) == ["pytorch", "pytorch"]
    page.locator('[data-tabs] >> nth=1 >> [role=tab][data-framework="mxnet"]').click()
    assert selected(page) == ["mxnet", "mxnet"]
    page.reload(wait_until="load")
    assert selected(page) == ["mxnet", "mxnet"]
    page.goto((site / "deep-rnn.html").as_uri() + "?framework=tensorflow", wait_until="load")
    assert selected(page) == ["tensorflow", "pytorch"]
    check_page_assets(page)
    requests.check("file://")
    context.close()
