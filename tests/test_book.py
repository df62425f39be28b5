"""The book: .ipynb twins in sync with the .md chapters, chapters free of logic,
Colab configuration, and (when Chromium and a built book exist) the rendered HTML."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.md"))
HTML = ROOT / "_build" / "html"
yaml = pytest.importorskip("yaml")


REFERENCE = "book/reference/"
"""The Reference part: plain Markdown pages (no code, no twin) and the API pages autoapi generates."""


def _toc_entries(entries: list[dict]) -> list[str]:
    files = []
    for entry in entries:
        files.append(entry["file"])
        files += _toc_entries(entry.get("sections", []))
    return files


def _all_toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += _toc_entries(part["chapters"])
    return files


def _toc_files() -> list[str]:
    """The chapters: executed MyST notebooks with a Colab twin (the Reference part aside)."""
    return [f for f in _all_toc_files() if not f.startswith(REFERENCE)]


def _code_cells(md: Path) -> list[str]:
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(md)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_every_toc_chapter_is_a_myst_notebook_with_a_twin():
    files = _toc_files()
    assert len(files) >= 6
    for name in files:
        md = ROOT / f"{name}.md"
        assert md.is_file(), md
        head = md.read_text().split("---")[1]
        assert "format_name: myst" in head and "ipynb,md:myst" in head, md
        assert md.with_suffix(".ipynb").is_file(), f"{md} has no .ipynb twin: jupytext --set-formats ipynb,md:myst {md}"


def test_reference_pages_are_plain_markdown_in_the_toc():
    """The Reference part: every page of book/reference/ is in the toc, is plain MyST Markdown without
    code cells or a notebook twin, and the generated API pages are listed (autoapi writes them at build time)."""
    listed = [f for f in _all_toc_files() if f.startswith(REFERENCE)]
    pages = sorted(p for p in (BOOK / "reference").glob("*.md"))
    assert pages and {f"{REFERENCE}{p.stem}" for p in pages} <= set(listed), "a reference page is missing from _toc.yml"
    assert f"{REFERENCE}api/camseg/index" in listed
    for md in pages:
        text = md.read_text()
        assert "{code-cell}" not in text and "jupytext" not in text, f"{md.name}: the reference executes no code"
        assert not md.with_suffix(".ipynb").exists(), f"{md.name} needs no notebook twin"
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    assert "autoapi.extension" in cfg["extra_extensions"] and "sphinx.ext.napoleon" in cfg["extra_extensions"]
    assert cfg["config"]["autoapi_root"] == f"{REFERENCE}api" and cfg["config"]["autoapi_keep_files"] is False


def test_no_citation_of_an_external_spec():
    """The contracts live in the book's Reference; docstrings and help texts cite its pages."""
    for path in [*(ROOT / "camseg").rglob("*.py"), *CHAPTERS, *(BOOK / "reference").glob("*.md")]:
        # \b: the environment variable CAMSEG_INSTALL_SPEC (pip's "install spec") is no citation
        assert not re.search(r"\bSPEC\b", path.read_text()), f"{path.relative_to(ROOT)} cites SPEC; cite the Reference"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_ipynb_twin_in_sync(md, tmp_path):
    """`jupytext --to ipynb --update` on a copy changes no cell of the committed twin."""
    pytest.importorskip("jupytext")
    twin = md.with_suffix(".ipynb")
    shutil.copy(md, tmp_path / md.name)
    shutil.copy(twin, tmp_path / twin.name)
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--update", "--quiet", str(tmp_path / md.name)],
                   check=True, capture_output=True, timeout=60)
    committed = json.loads(twin.read_text())
    updated = json.loads((tmp_path / twin.name).read_text())

    def cells(nb):
        return [(c["cell_type"], "".join(c["source"]), c.get("id"), c["metadata"].get("tags"))
                for c in nb["cells"]]

    assert cells(updated) == cells(committed), (
        f"{twin.name} is out of sync with {md.name}: run `jupytext --to ipynb --update {md.relative_to(ROOT)}`")
    assert all(not c.get("outputs") for c in committed["cells"] if c["cell_type"] == "code"), \
        f"{twin.name} must be committed without outputs"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_chapters_define_no_logic(md):
    """Chapters call camseg; functions, classes and lambdas belong in camseg.publishing (viz, report)."""
    for source in _code_cells(md):
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), (
                f"{md.name} defines {type(node).__name__} at line {node.lineno}; move it to camseg")


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_colab_setup_cell(md):
    """First code cell: hidden (remove-cell), installs camseg only inside Colab."""
    jupytext = pytest.importorskip("jupytext")
    first = next(c for c in jupytext.read(md).cells if c.cell_type == "code")
    assert "remove-cell" in first.metadata.get("tags", [])
    assert '"google.colab" in sys.modules' in first.source and "pip" in first.source


def test_config_for_colab_and_strict_execution():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["repository"]["url"] == "https://github.com/camseg/camseg"
    assert cfg["repository"]["branch"] == "main"
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "book/*.ipynb" in cfg["exclude_patterns"]
    assert cfg["execute"]["execute_notebooks"] in ("cache", "force")
    sphinx = cfg["sphinx"]["config"]
    assert sphinx["nb_execution_raise_on_error"] is True
    assert sphinx["nb_render_markdown_format"] == "myst"


CODE_COLUMN = 79
"""Longest shown code line: the book's code column holds about 80 characters at 1280 px."""


def _cells(md: Path):
    jupytext = pytest.importorskip("jupytext")
    return [c for c in jupytext.read(md).cells]


def _shown(cell) -> bool:
    tags = set(cell.metadata.get("tags", []))
    return cell.cell_type == "code" and not tags & {"remove-cell", "remove-input", "hide-input"}


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_chapter_opens_with_prose_and_shown_code_fits(md):
    """STYLE 14: the first thing after the title is prose; set-up cells are hidden; no shown code
    line runs off the column."""
    cells = _cells(md)
    first = cells[0]
    assert first.cell_type == "markdown", f"{md.name} starts with a code cell"
    body = [line for line in first.source.splitlines() if line.strip()]
    assert body[0].startswith("# ") and len(body) >= 2 and not body[1].startswith(("#", "`", ":")), (
        f"{md.name}: the title must be followed by a paragraph of prose")
    setup = [c for c in cells if c.cell_type == "code" and "book.setup(" in c.source]
    assert len(setup) == 1 and not _shown(setup[0]), f"{md.name}: one hidden set-up cell calling book.setup"
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert params and not _shown(params[0]), f"{md.name}: the parameters cell must be hidden (remove-cell)"
    for cell in filter(_shown, cells):
        for line in cell.source.splitlines():
            assert len(line) <= CODE_COLUMN, f"{md.name}: shown code line of {len(line)} chars: {line!r}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_figure_cells_have_numbered_captions(md):
    """A cell that draws with camseg.publishing.viz is a captioned, named figure (or is glued into one)."""
    text = md.read_text()
    for cell in _cells(md):
        if cell.cell_type != "code" or "viz." not in cell.source:
            continue
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        glued = re.search(r'glue\("(\w+)"', cell.source)
        if glued:
            assert f"{{glue:figure}} {glued.group(1)}" in text, f"{md.name}: glued figure {glued.group(1)} not pasted"
            continue
        assert figure.get("caption") and figure.get("name", "").startswith("fig-"), (
            f"{md.name}: a figure cell without a caption and a fig- name:\n{cell.source[:200]}")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TEXT_ONLY = {"book/discussion"}  # chapters without figures
WITH_MATH = {"book/gradcam", "book/segmentation"}
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
@pytest.mark.skipif(not (HTML / "book" / "intro.html").is_file(), reason="book not built (jupyter-book build .)")
def test_built_html_in_a_browser():
    """Each chapter renders with its figures, no error output, and a Colab link to its .ipynb twin."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            blocked: list[str] = []

            def local_only(route):
                if route.request.url.startswith(("file:", "data:")):
                    return route.continue_()
                blocked.append(route.request.url)
                return route.abort()

            page.route("**/*", local_only)
            for name in _toc_files():
                html = HTML / f"{name}.html"
                page.goto(html.as_uri())
                link = page.locator("a[href*='colab.research.google.com']").first
                href = link.get_attribute("href")
                assert href == f"https://colab.research.google.com/github/camseg/camseg/blob/main/{name}.ipynb", href
                assert (ROOT / f"{name}.ipynb").is_file(), f"the Colab link of {name} points to a missing notebook"
                text = page.inner_text("main")
                assert "Traceback" not in text and "Error" not in text.split("\n")[0]
                broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                                       ".map(i => i.src).filter(s => s.startsWith('file:'))")
                assert broken == [], broken
                shown = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0"
                                      " && i.src.includes('_images')).length")
                if name not in TEXT_ONLY:
                    assert shown > 0, f"{name}: no figure rendered"
                _check_page(page, name)
            assert not [u for u in blocked if "mathjax" in u.lower()], f"MathJax requested from the network: {blocked}"
        finally:
            browser.close()


def _check_page(page, name: str) -> None:
    """Math typeset offline, figures captioned, prose first, nothing wider than a phone."""
    if name in WITH_MATH:
        count = page.evaluate("async () => { if (!window.MathJax || !MathJax.startup) return -1;"
                              " await MathJax.startup.promise;"
                              " return document.querySelectorAll('mjx-container').length }")
        assert count > 0, f"{name}: MathJax did not typeset (mjx-container elements: {count})"
        text = page.inner_text("main")
        assert "\\(" not in text and "\\[" not in text and "\\frac" not in text, f"{name}: raw LaTeX left"
    loose = page.evaluate("""[...document.querySelectorAll('main img')].filter(i => i.src.includes('_images'))
        .filter(i => { const f = i.closest('figure'); const c = f && f.querySelector('figcaption');
                       return !c || !/Fig\\.\\s*\\d+/.test(c.innerText); }).map(i => i.src)""")
    assert loose == [], f"{name}: result figures outside a numbered, captioned <figure>: {loose}"
    first = page.evaluate("""(() => { const h = document.querySelector('article.bd-article section > h1');
        let el = h ? h.nextElementSibling : null;
        while (el && (el.offsetHeight === 0 || el.tagName === 'SPAN')) el = el.nextElementSibling;
        return el ? el.tagName + '.' + el.className : 'none'; })()""")
    assert first.startswith("P."), f"{name}: the chapter opens with {first}, not with prose"
    wide = page.evaluate("[...document.querySelectorAll('main div.cell_input pre')]"
                         ".filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.innerText.slice(0, 60))")
    assert wide == [], f"{name}: code lines wider than the column at 1280 px: {wide}"
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_timeout(300)
    over = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert over <= 1, f"{name}: the page scrolls sideways by {over} px at 390 px"
    boxes = page.evaluate("[...document.querySelectorAll('main table')].map(t => { let b = t.parentElement;"
                          " while (b && !['auto', 'scroll'].includes(getComputedStyle(b).overflowX))"
                          " b = b.parentElement;"
                          " return !!b; })")
    assert all(boxes), f"{name}: a table without a scrolling box at 390 px"
    page.set_viewport_size({"width": 1280, "height": 900})


REPORT = ROOT / "_build" / "report.pdf"


@pytest.mark.skipif(not REPORT.is_file(), reason="report not built (camseg build or camseg report)")
def test_built_report_two_pages_no_paths_or_warnings():
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(str(REPORT))
    assert len(reader.pages) == 2
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    text = " ".join(pages)
    assert "IoU" in text and "segmenter" in text.lower()
    assert not re.search(r"(?:^|\s)(?:/|~/|[A-Za-z]:\\)[\w.-]+[/\\][\w./\\-]+", text), "a file path in the report"
    assert not re.search(r"warn|traceback|error:", text, re.I), "log text in the report"
    assert "SAM" in pages[0]
    if "stand-in" not in pages[0]:  # only a SAM build may leave the stand-in unnamed
        assert "sam-vit" in pages[0]
