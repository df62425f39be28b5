"""The book: .ipynb twins in sync with the .md chapters, chapters free of logic,
Colab configuration, and (when Chromium and a built book exist) the rendered HTML."""

from __future__ import annotations

import ast
import json
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


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [c["file"] for c in part["chapters"]]
    return files


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
    """Chapters call camseg; functions, classes and lambdas belong in camseg.viz / camseg.report."""
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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TEXT_ONLY = {"book/intro", "book/discussion"}  # chapters without figures
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
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else route.abort())
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
        finally:
            browser.close()


REPORT = ROOT / "_build" / "report.pdf"


@pytest.mark.skipif(not REPORT.is_file(), reason="report not built (camseg build or camseg report)")
def test_built_report_has_one_or_two_pages():
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(str(REPORT))
    assert 1 <= len(reader.pages) <= 2
    text = "".join(page.extract_text() for page in reader.pages)
    assert "IoU" in text and "segmenter" in text.lower()
