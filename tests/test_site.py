"""The course website (``make site``): built from the stored outputs, and sound in a browser.

The site is built once per test session (Sphinx, nothing executed). The first tests read
the HTML; the browser tests load every page in the system's Chromium: no console error,
every image loads, every internal link resolves, every launch link carries the course's
address, every formula is typeset (no raw `$$`), no code block is wider than its column,
code has a copy button, there is one search box, search finds a lesson, a solution
unfolds.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from browser_helpers import chromium_browser, serve_folder
from notebook_helpers import REPO_ROOT, SOLUTIONS
from session_cache import once_per_session
from segkit_course.address import colab_url, course_url
from segkit_course.build import read_notebook, solution_paths
from segkit_course.site import build_site

LESSONS = [path.stem for path in solution_paths(SOLUTIONS)]


def _build(folder: Path) -> Path:
    return build_site(REPO_ROOT, folder / "html", stage_dir=folder / "src").parent


@pytest.fixture(scope="session")
def site(tmp_path_factory, worker_id) -> Path:
    """The site, built once for the test session (across xdist workers too)."""
    return once_per_session(tmp_path_factory, worker_id, "course-site", _build)


class Links(HTMLParser):
    """The href/src attributes and the ids of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def parse(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def pages(site: Path) -> list[Path]:
    """The site's pages (not the theme's templates under _static/)."""
    return sorted(page for page in site.rglob("*.html") if "_static" not in page.parts)


# --------------------------------------------------------------------------- the HTML


def test_every_lesson_has_a_page_with_its_text_code_outputs_and_figures(site):
    for name in LESSONS:
        html = (site / "lessons" / f"{name}.html").read_text(encoding="utf-8")
        solution = read_notebook(SOLUTIONS / f"{name}.ipynb")
        title = solution.cells[0].source.splitlines()[0].lstrip("# ").strip()
        assert title.replace("'", "’") in unescape(html), name  # Sphinx curls quotes
        pictures = sum("image/png" in o.get("data", {}) for c in solution.cells
                       for o in c.get("outputs", []))
        assert html.count('<img alt="_images/') + html.count('src="../_images/') >= pictures
        assert "cell_output" in html, name


def test_exercise_solutions_are_folded_and_the_stub_is_shown(site):
    html = (site / "lessons" / "00_setup.html").read_text(encoding="utf-8")
    assert html.count("Show the solution") == 3  # float32_mib, foreground_fraction, list_pairs
    assert 'raise</span> <span class="ne">NotImplementedError' in html
    folded = re.findall(r'<details class="[^"]*hide above-input">(.*?)</details>', html, re.S)
    assert any("values</span> <span class=\"o\">*</span> <span class=\"mi\">4" in part
               for part in folded), "the solution of float32_mib is not inside a toggle"
    assert "BEGIN SOLUTION" not in html
    answers = (site / "lessons" / "02_unet.html").read_text(encoding="utf-8")
    assert "Show the answer" in answers and "YOUR ANSWER HERE" not in answers


def test_each_page_offers_colab_local_jupyterlab_and_downloads(site):
    url = course_url()
    for name in LESSONS:
        html = (site / "lessons" / f"{name}.html").read_text(encoding="utf-8")
        assert html.count(f'href="{colab_url(f"lessons/{name}.ipynb")}"') >= 2  # button, box
        text = unescape(re.sub(r"<[^>]+>", "", html))
        assert f"jupyter lab lessons/{name}.ipynb" in text
        assert f"git clone {url}" in text
        for download in (f"{name}.ipynb", f"{name}-solutions.ipynb"):
            assert f'href="../notebooks/{download}"' in html, (name, download)
            assert (site / "notebooks" / download).is_file(), download


def test_downloads_give_the_lesson_notebook_and_the_solutions_notebook(site):
    """The lesson download is the student's notebook (what lessons/ holds), not the page's
    own source (stubs, solutions and the launch box's markup together)."""
    for name in LESSONS:
        lesson = site / "notebooks" / f"{name}.ipynb"
        assert lesson.read_bytes() == (REPO_ROOT / "lessons" / f"{name}.ipynb").read_bytes()
        solutions = (site / "notebooks" / f"{name}-solutions.ipynb").read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" in solutions and ":::{admonition}" not in solutions
        html = (site / "lessons" / f"{name}.html").read_text(encoding="utf-8")
        menu = re.search(r'dropdown-download-buttons.*?</ul>', html, re.S).group(0)
        offered = re.findall(r'<a href="([^"]+)"', menu)
        assert offered == [f"../notebooks/{name}.ipynb",
                           f"../notebooks/{name}-solutions.ipynb"], (name, offered)
    assert not list(site.glob("_sources/**/*.ipynb")), "the page's own source is offered"


def test_nothing_is_loaded_from_another_site(site):
    for page in pages(site):
        external = [src for src in parse(page).images if urlparse(src).scheme]
        assert not external, (page.name, external)


def test_pages_and_launch_buttons_follow_another_course_address(tmp_path, monkeypatch):
    import runpy

    import segkit_course.site as site_module

    other = "https://github.com/my-school/seg-course"
    monkeypatch.setattr(site_module, "solution_paths",  # one lesson is enough here
                        lambda folder: [SOLUTIONS / "00_setup.ipynb"])
    site_module.stage(REPO_ROOT, tmp_path, other)
    page = (tmp_path / "lessons" / "00_setup.ipynb").read_text(encoding="utf-8")
    assert "colab.research.google.com/github/my-school/seg-course/blob/main/lessons/" in page
    assert f'url = \\"{other}\\"' in page  # the set-up cell clones the other copy
    assert "segkit-course/" not in page
    assert f"git clone {other}" in (tmp_path / "index.md").read_text(encoding="utf-8")
    # build_site hands the same address to site/conf.py, which makes the launch buttons
    monkeypatch.setenv("SEGKIT_COURSE_URL", other)
    conf = runpy.run_path(str(tmp_path / "conf.py"))
    assert conf["html_theme_options"]["repository_url"] == other


# --------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def served(site):
    """(base URL of the site served over HTTP, the system's headless Chromium)."""
    with serve_folder(site) as base, chromium_browser() as browser:
        yield base, browser


def internal_targets(site: Path, page: Path) -> list[tuple[str, Path, str]]:
    """(link, file, anchor) of every link of ``page`` that stays inside the site."""
    targets = []
    base = page.relative_to(site).as_posix()
    for link in parse(page).links:
        parts = urlparse(link)
        if parts.scheme or link.startswith(("mailto:", "javascript:")):
            continue
        resolved = urlparse(urljoin(base, link))
        target = site / unquote(resolved.path) if resolved.path else page
        if target.is_dir():
            target = target / "index.html"
        targets.append((link, target, resolved.fragment))
    return targets


def test_every_internal_link_resolves(site):
    ids = {page: parse(page).ids for page in pages(site)}
    broken = []
    for page in pages(site):
        for link, target, anchor in internal_targets(site, page):
            if not target.exists():
                broken.append(f"{page.name}: {link} (no file)")
            elif anchor and target.suffix == ".html" and anchor not in ids[target]:
                broken.append(f"{page.name}: {link} (no #{anchor})")
    assert not broken, "\n".join(broken)


def test_every_page_loads_without_errors_and_every_image_shows(site, served):
    base, browser = served
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # ERR_ABORTED is the browser cancelling a request (it does so with the favicon on a busy
    # machine), not the site failing it; a missing file shows up as a 404 response below.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED"
            and problems.append(f"failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    for html in pages(site):
        problems.clear()
        # networkidle: nothing of this page is still loading when the next one is opened
        response = page.goto(base + html.relative_to(site).as_posix(), wait_until="networkidle")
        assert response.ok, (html.name, response.status)
        broken_images = page.eval_on_selector_all(
            "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
                   ".map(i => i.src)")
        assert not broken_images, (html.name, broken_images)
        assert not problems, (html.name, problems)


def test_every_launch_link_carries_the_course_address(served):
    colab_prefix = colab_url("lessons/")
    base, browser = served
    page = browser.new_page()
    for name in LESSONS:
        page.goto(f"{base}lessons/{name}.html")
        launch = page.eval_on_selector_all(
            ".dropdown-launch-buttons a, .course-launch a[href^='http']",
            "links => links.map(a => a.href)")
        colab = [href for href in launch if "colab.research.google.com" in href]
        assert colab and all(href == f"{colab_prefix}{name}.ipynb" for href in colab), \
            (name, launch)
        for href in page.eval_on_selector_all("a[href*='colab.research.google.com']",
                                              "links => links.map(a => a.href)"):
            assert href.startswith(colab_prefix), (name, href)


# true once MathJax has typeset the page (at once on a page without formulas: Sphinx adds
# MathJax only where there is one)
TYPESET = ("() => !document.querySelector('.math') || (window.MathJax && MathJax.startup"
           " && MathJax.startup.document && document.querySelector('mjx-container') !== null)")


def open_every_fold(page) -> None:
    page.eval_on_selector_all("details", "folds => folds.forEach(d => d.open = true)")


def test_formulas_are_typeset_and_no_tex_is_left_raw(served):
    """MathJax (the site's own copy) typesets every formula: no `$$` or TeX command shows."""
    base, browser = served
    page = browser.new_page()
    for name in LESSONS:
        page.goto(f"{base}lessons/{name}.html", wait_until="networkidle")
        page.wait_for_function(TYPESET)
        open_every_fold(page)
        text = page.inner_text("article")
        prose = page.eval_on_selector_all(
            "article p, article li, article td, article h1, article h2, article h3",
            "nodes => nodes.map(n => n.innerText).join('\\n')")
        assert "$$" not in text, name
        leftovers = re.findall(r"\\(?:frac|text|cap|cup|sum|qquad|mathrm)\b", prose)
        assert not leftovers, (name, leftovers)
        formulas = page.eval_on_selector_all(".math", "nodes => nodes.map(n =>"
                                             " !!n.querySelector('mjx-container'))")
        assert all(formulas), (name, f"{formulas.count(False)} formula(s) not typeset")
    page.goto(f"{base}lessons/04_metrics.html", wait_until="networkidle")
    page.wait_for_function(TYPESET)
    assert page.locator("div.math mjx-container").count() >= 1  # the Dice/IoU formula


def test_code_fits_its_column_and_has_a_copy_button(served):
    """In a 1280 px window no code block (input or output) is wider than the text column:
    long lines wrap, so nothing is cut off; every code cell has a copy button, outputs not."""
    base, browser = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for name in LESSONS:
        page.goto(f"{base}lessons/{name}.html", wait_until="networkidle")
        open_every_fold(page)
        wide = page.eval_on_selector_all(
            "article pre", "pres => pres.filter(p => p.offsetParent !== null"
                           " && p.scrollWidth > p.clientWidth + 1)"
                           ".map(p => p.innerText.split('\\n')[0].slice(0, 60))")
        assert not wide, (name, f"{len(wide)} code block(s) scroll sideways", wide[:3])
        inputs = page.locator("div.cell_input div.highlight pre").count()
        buttons = page.locator("div.cell_input button.copybtn").count()
        assert inputs and buttons == inputs, (name, inputs, buttons)
        assert page.locator("div.cell_output button.copybtn").count() == 0, name


def test_one_search_box_at_any_width(served):
    """One search box: the sidebar's field, or the header's button where the sidebar is
    folded away (narrow windows)."""
    base, browser = served
    for width in (1280, 700):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(f"{base}lessons/03_training.html", wait_until="networkidle")
        shown = page.eval_on_selector_all(
            ".search-button__button", "buttons => buttons.filter(b => b.offsetParent !== null"
                                      " && getComputedStyle(b).visibility !== 'hidden').length")
        assert shown == 1, (width, shown)
        page.close()


def test_search_finds_a_lesson_and_a_solution_unfolds(served):
    base, browser = served
    page = browser.new_page()
    page.goto(f"{base}search.html?q=confusion+matrix")
    results = page.locator("#search-results li a")
    results.first.wait_for(timeout=15_000)
    assert any("05_multiclass" in href for href in results.evaluate_all(
        "links => links.map(a => a.href)"))

    page.goto(f"{base}lessons/00_setup.html")
    solution = page.locator("details.hide", has_text="Show the solution").first
    code = solution.locator("pre").first
    assert not code.is_visible()
    solution.locator("summary").click()
    assert code.is_visible() and "math.prod(shape)" in code.inner_text()
