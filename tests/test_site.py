"""The built book as a reader sees it: pages opened in headless Chromium.

Run after ``make book`` with ``make site`` (``.ci/run`` does). Each checked page is
loaded from ``file://`` with JavaScript running, then its live DOM is inspected:

- MathJax rendered every formula (an ``mjx-container`` in each ``.math`` element,
  no ``mjx-merror``), and no raw TeX delimiters are left in the text;
- every image has a ``src`` that exists on disk and actually decoded
  (``naturalWidth > 0``, read by a small script injected into a probe copy of the page);
- the sidebar lists every part and every file of ``_toc.yml``;
- every in-book link (relative ``href``) points to an existing file, and to an
  existing anchor when it has a ``#fragment``.

A screenshot of each page is kept in ``_build/screenshots/``. Without Chromium or
without a built site the tests are skipped, except when the ``CI`` environment
variable is set, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = ["book/intro.html", "book/ensembles/random_forest.html", "book/sequence/flash_attention.html", "book/rl/dpo.html"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# Records, once the page has loaded, whether each image decoded.
PROBE_SCRIPT = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll("img").forEach(function (img) {
    img.setAttribute("data-natural-width", String(img.naturalWidth));
  });
  document.documentElement.setAttribute("data-probe-loaded", "yes");
});
</script>"""
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


# --------------------------------------------------------------------------- a minimal DOM


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [
            e for e in self.iter()
            if (tag is None or e.tag == tag) and (cls is None or cls in e.attrs.get("class", "").split())
        ]

    def text(self, skip: frozenset[str] = frozenset()) -> str:
        if self.tag in skip or self.tag.startswith("mjx-"):
            return ""
        return "".join(c if isinstance(c, str) else c.text(skip) for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# --------------------------------------------------------------------------- fixtures


@dataclass
class Page:
    name: str
    path: Path
    dom: Element


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    _unavailable("Chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def site() -> Path:
    missing = [page for page in PAGES if not (SITE / page).is_file()]
    if missing:
        _unavailable(f"the built book is missing {missing}: run `make book` first")
    return SITE


def _run_chromium(chromium: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def pages(chromium: str, site: Path) -> dict[str, Page]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    rendered = {}
    for name in PAGES:
        path = site / name
        # The probe copy sits beside the page so that its relative links resolve the same.
        probe = path.with_name(f".probe-{path.name}")
        probe.write_text(path.read_text(encoding="utf-8").replace("</body>", f"{PROBE_SCRIPT}</body>"), encoding="utf-8")
        try:
            dom = _run_chromium(chromium, "--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
        finally:
            probe.unlink()
        shot = SCREENSHOTS / f"{name.replace('/', '_').removesuffix('.html')}.png"
        _run_chromium(chromium, "--virtual-time-budget=15000", "--window-size=1280,1400", f"--screenshot={shot}", path.as_uri())
        assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot of {name}"
        rendered[name] = Page(name, path, parse(dom))
        assert rendered[name].dom.find_all("html")[0].attrs.get("data-probe-loaded") == "yes", f"{name} never finished loading"
    return rendered


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", PAGES)
def test_math_rendered(pages: dict[str, Page], name: str) -> None:
    dom = pages[name].dom
    formulas = [e for e in dom.iter() if "math" in e.attrs.get("class", "").split() and e.tag in ("span", "div")]
    assert formulas, f"{name} has no math to check"
    unrendered = [e for e in formulas if not e.find_all("mjx-container")]
    assert not unrendered, f"{len(unrendered)} of {len(formulas)} formulas on {name} were not typeset by MathJax"
    errors = dom.find_all("mjx-merror") + [e for e in dom.iter() if "data-mjx-error" in e.attrs]
    assert not errors, f"MathJax reported errors on {name}: {[e.attrs for e in errors][:3]}"
    body = dom.find_all("body")[0].text(skip=frozenset({"script", "style", "pre", "code", "textarea"}))
    leftovers = sorted({m.group(0) for m in RAW_TEX.finditer(body)})
    assert not leftovers, f"raw TeX delimiters {leftovers} left in the text of {name}"


@pytest.mark.parametrize("name", PAGES)
def test_images_load(pages: dict[str, Page], name: str) -> None:
    page = pages[name]
    images = page.dom.find_all("img")
    for img in images:
        src = img.attrs.get("src", "")
        assert src, f"an image on {name} has no src"
        if not src.startswith("data:"):
            parts = urlsplit(src)
            assert not parts.scheme, f"{name} loads an image from the network: {src}"
            target = (page.path.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"image {src} on {name} does not exist ({target})"
        width = img.attrs.get("data-natural-width")
        assert width is not None and int(width) > 0, f"image {src[:80]} on {name} did not decode (naturalWidth {width})"
    if name == "book/intro.html":
        assert any("dependency_map" in img.attrs.get("src", "") for img in images), "the dependency map is missing"


@pytest.mark.parametrize("name", PAGES)
def test_sidebar_lists_the_toc(pages: dict[str, Page], name: str) -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    page = pages[name]
    navs = [e for e in page.dom.find_all("nav") if "bd-docs-nav" in e.attrs.get("class", "")]
    assert navs, f"no sidebar on {name}"
    nav = navs[0]
    captions = [" ".join(e.text().split()) for e in nav.find_all(cls="caption-text")]
    assert captions == [part["caption"] for part in toc["parts"]], f"sidebar parts on {name}: {captions}"
    linked = set()
    for a in nav.find_all("a"):
        href = urlsplit(a.attrs.get("href", ""))
        target = page.path if not href.path else (page.path.parent / unquote(href.path)).resolve()
        linked.add(target)
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            html = (SITE / f"{chapter['file']}.html").resolve()
            assert html in linked, f"the sidebar of {name} does not link {chapter['file']}"


def _ids(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        cache[path] = {e.attrs["id"] for e in parse(path.read_text(encoding="utf-8")).iter() if "id" in e.attrs}
    return cache[path]


@pytest.mark.parametrize("name", PAGES)
def test_internal_links_resolve(pages: dict[str, Page], name: str) -> None:
    page = pages[name]
    own_ids = {e.attrs["id"] for e in page.dom.iter() if "id" in e.attrs}
    cache: dict[Path, set[str]] = {}
    broken, checked = [], 0
    for a in page.dom.find_all("a"):
        href = a.attrs.get("href")
        if href is None:
            continue
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:  # external, mailto:, javascript:
            continue
        checked += 1
        if not parts.path:
            if parts.fragment and unquote(parts.fragment) not in own_ids:
                broken.append(f"{href} (no such anchor)")
            continue
        target = (page.path.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target})")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target, cache):
            broken.append(f"{href} (no such anchor)")
    assert checked > 10, f"only {checked} in-book links found on {name}"
    assert not broken, f"broken links on {name}: {broken}"
