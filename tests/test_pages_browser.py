"""The rendered pages in a real headless browser: Debian's Chromium driven by Playwright.

Renders the fixture book of test_pages.py, serves it on 127.0.0.1 (and opens it from file://),
and checks what a reader sees: PyTorch tabs by default, one click switches every tab group, the
choice survives a reload, ?framework=mxnet selects, formulas are typeset, images load, no
request fails or leaves the machine. On every page: ids unique, internal links resolve, no
sideways scroll at 390 px; the table of contents is a sidebar on wide screens and folded on
phones. $D2L_SITE_DIR adds the pages of a built site (e.g. _build/site) to the per-page checks.
Saves a screenshot (to $D2L_SCREENSHOT_DIR when set).
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

from book import FRAMEWORKS, pages

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
    from test_pages import SECTIONS, write_fixture  # tests/ is on sys.path (rootdir conftest)

    root = tmp_path_factory.mktemp("pages")
    executed, chapters = write_fixture(root)
    pages.render(executed, root / "site", SECTIONS, FRAMEWORKS, chapters)
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

    # Default: PyTorch everywhere (every group has it).
    assert selected(page) == ["pytorch", "pytorch", "pytorch"]
    assert page.locator(".picker [aria-pressed=true]").inner_text() == "PyTorch"

    # One click on TensorFlow in the first group switches every group; the third group has no
    # TensorFlow code, so it keeps PyTorch and says so in French.
    page.locator('[data-tabs] >> nth=0 >> [role=tab][data-framework="tensorflow"]').click()
    assert selected(page) == ["tensorflow", "tensorflow", "pytorch"]
    note = page.locator("[data-tabs] >> nth=2 >> .tab-missing")
    assert note.is_visible() and "TensorFlow" in note.inner_text()
    assert "n'existe pas" in note.inner_text()
    assert page.locator(".picker [aria-pressed=true]").inner_text() == "TensorFlow"

    # Remembered across a reload and on another page.
    page.reload(wait_until="load")
    assert selected(page) == ["tensorflow", "tensorflow", "pytorch"]
    page.goto(f"{server}/intro.html", wait_until="load")
    assert selected(page) == ["pytorch"]  # intro has no TensorFlow code

    # The URL parameter wins (and is remembered too).
    page.goto(f"{url}?framework=mxnet", wait_until="load")
    assert selected(page) == ["mxnet"] * 3
    page.goto(url, wait_until="load")
    assert selected(page) == ["mxnet"] * 3

    # Formulas typeset as MathML: boxes with real size; display math taller than text.
    sizes = page.eval_on_selector_all(
        "math",
        "ms => ms.map(m => { const r = m.getBoundingClientRect(); "
        "return [m.getAttribute('display'), r.width, r.height]; })",
    )
    assert len(sizes) >= 6
    assert all(w > 0 and h > 0 for _, w, h in sizes), sizes
    assert max(h for d, _, h in sizes if d == "block") > 1.5 * min(h for _, _, h in sizes)
    assert page.locator(".eqno").first.inner_text() == "(2.1)"
    assert page.locator("figure figcaption").first.is_visible()
    check_page_assets(page)

    # Back to PyTorch for a representative screenshot.
    page.locator('.picker [data-framework="pytorch"]').click()
    assert selected(page) == ["pytorch"] * 3
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
    assert selected(page) == ["pytorch"] * 3
    page.locator('[data-tabs] >> nth=1 >> [role=tab][data-framework="mxnet"]').click()
    assert selected(page) == ["mxnet"] * 3
    page.reload(wait_until="load")
    assert selected(page) == ["mxnet"] * 3
    page.goto((site / "deep-rnn.html").as_uri() + "?framework=tensorflow", wait_until="load")
    assert selected(page) == ["tensorflow", "tensorflow", "pytorch"]
    check_page_assets(page)
    requests.check("file://")
    context.close()


PAGE_CHECK = """() => {
    const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
    const duplicates = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
    const here = location.pathname.split('/').pop();
    const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
        .filter(h => !h.includes('://'));
    const missing = links.filter(h => h.startsWith('#') && !document.getElementById(
        decodeURIComponent(h.slice(1))));
    const other = links.filter(h => !h.startsWith('#'));
    return {duplicates, missing, other, here,
            overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth};
}"""


def check_every_page(browser, site: Path, base: str) -> int:
    """Unique ids, links that resolve (files and fragments), no sideways scroll at 390 px."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    requests = Requests(page)
    names = sorted(p.name for p in site.glob("*.html"))
    ids_of: dict[str, set[str]] = {}
    links: list[tuple[str, str]] = []
    for name in names:
        for fw in FRAMEWORKS:  # every tab shown once: hidden panels may overflow too
            page.goto(f"{base}/{name}?framework={fw}", wait_until="load")
            found = page.evaluate(PAGE_CHECK)
            assert not found["duplicates"], f"{name}: duplicate ids {found['duplicates']}"
            assert not found["missing"], f"{name}: links to no id {found['missing']}"
            assert found["overflow"] <= 0, (
                f"{name} ({fw}): scrolls sideways by {found['overflow']} px"
            )
        ids_of[name] = set(page.eval_on_selector_all("[id]", "es => es.map(e => e.id)"))
        links += [(name, href) for href in found["other"]]
    for name, href in links:
        path, _, fragment = href.partition("#")
        path = path.split("?")[0]
        assert (site / path).is_file(), f"{name}: {href} -> no such file"
        if fragment and path.endswith(".html"):
            assert fragment in ids_of[path], f"{name}: {href} -> no such id in {path}"
    requests.check(f"{base}/")
    context.close()
    return len(names)


def test_every_page_is_valid_and_fits_a_phone(browser, server: str, site: Path) -> None:
    assert check_every_page(browser, site, server) == 3


def test_every_page_of_a_built_site(browser) -> None:
    if not os.environ.get("D2L_SITE_DIR"):
        pytest.skip("D2L_SITE_DIR is not set (e.g. D2L_SITE_DIR=_build/site)")
    built = Path(os.environ["D2L_SITE_DIR"])
    handler = functools.partial(_QuietHandler, directory=str(built))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert check_every_page(browser, built, f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_table_of_contents_and_downloads(browser, server: str) -> None:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.goto(f"{server}/deep-rnn.html", wait_until="load")
    toc = page.locator(".page-toc")
    assert toc.evaluate("t => t.open") and page.locator(".page-toc a").first.is_visible()
    box, main = toc.bounding_box(), page.locator("main").bounding_box()
    assert box["x"] + box["width"] <= main["x"]  # a sidebar, left of the text
    page.locator(".page-toc a", has_text="Implémentation concise").click()
    assert page.evaluate("decodeURIComponent(location.hash)") == "#implémentation-concise"
    visible = page.locator(".download:visible")
    assert visible.count() == 1 and "PyTorch" in visible.inner_text()
    page.locator('.picker [data-framework="mxnet"]').click()
    assert "MXNet" in page.locator(".download:visible").inner_text()
    href = page.locator(".download:visible a").first.get_attribute("href")
    assert href == "notebooks/mxnet/deep-rnn.ipynb"
    page.goto(f"{server}/intro.html?framework=tensorflow", wait_until="load")
    assert "n'existe pas en TensorFlow" in page.locator(".download:visible").inner_text()
    # On a phone: folded above the text; a click opens it, following a link folds it again.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server}/deep-rnn.html", wait_until="load")
    assert not toc.evaluate("t => t.open")
    page.locator(".page-toc summary").click()
    assert page.locator(".page-toc a").first.is_visible()
    page.locator(".page-toc a").first.click()
    assert not toc.evaluate("t => t.open")
    context.close()
