"""Render the built book in headless Chromium, offline, and check what a reader sees.

Needs `_build/html` (``make book``; ``make test`` builds it before running pytest) and Debian's
``chromium``. Every page in the table of contents except the generated API pages is loaded in
one browser, after MathJax (served from the book, ``book/_static/mathjax``) has typeset it, and
checked for each class of defect in ``CHECKS``:

- raw TeX: TeX source (``\\frac``, ``$$``, ``\\begin``, ``\\(``...) in the page text outside code, or
  a formula MathJax could not parse;
- leaked directive option: ``:width:``, ``:alt:``, ``:class:``... in the page text (a directive whose
  options did not parse, such as a multi-line ``:alt:``);
- wide output / wide code / wide math: a stored output, a code cell or a displayed formula wider
  than the text column (the reader must scroll sideways or loses the end of the line);
- math split by list markup: a paragraph or list item with an odd number of ``$`` or a list item
  holding TeX (a line inside ``$...$`` that starts with ``- `` became a bullet);
- formula in code font: inline code that is a formula (``C^T``, ``k^2``, ``_{...}``), which belongs
  in ``$...$``;
- unlinked reference: "API reference", "performance appendix", "glossary", "bibliography" or
  "execution status" in running text without a link, or a ``{func}``/``{class}``/``{term}`` role
  whose target does not exist (rendered as code without a link);
- unlinked glossary term: a chapter that uses a glossary term but never links it with ``{term}``.

Failures are reported per page. Pages that fail a check today are listed in ``KNOWN_DEFECTS``
with the reason: chapter authors remove their entries as they fix them (a listed pair that no
longer fails is reported too, so the list only shrinks). Also per chapter: every image loads, every
link inside the book resolves, there is a figure, and widget cells have a static figure beside them.
Screenshots go to pytest's temporary directory: the landing page and chapter 2, or every page with
``BOOK_SCREENSHOTS=all`` (about 5 s a page).
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CHECKS = (
    "raw TeX",
    "leaked directive option",
    "wide output",
    "wide code",
    "wide math",
    "math split by list markup",
    "formula in code font",
    "unlinked reference",
    "unlinked glossary term",
)

# (page stem, check) -> why it fails today. Chapter authors: fix the page, then delete the entry.
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}

PROBE_JS = Path(__file__).with_name("probe.js")  # the checks, run inside Chromium
PROBE = """<html><body><pre id="out">pending</pre><iframe id="f" width="1280" height="1000"></iframe>
<script>__SCRIPT__</script></body></html>
"""


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    out = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                out.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc.get("parts", []))
    return out


def _pages() -> list[Path]:
    """Every page a reader reads: the book pages and chapters, not the generated API pages."""
    return [HTML / f"{f}.html" for f in _toc_files() if not f.startswith("book/api/")]


def _chapter_pages() -> list[Path]:
    return [p for p in _pages() if p.parent.name == "notebooks"]


def _screenshot_pages() -> list[Path]:
    if os.environ.get("BOOK_SCREENSHOTS") == "all":
        return _pages()
    return [p for p in _pages() if p.stem in ("intro", "ch02_cnn_basics")]


def glossary_terms(page: Path) -> list[dict]:
    """The glossary's definitions as {ids, names}, one per definition (its aliases together)."""
    if not page.exists():
        return []
    text = page.read_text()
    groups, current = [], {"ids": [], "names": []}
    for m in re.finditer(r'<dt id="(term-[^"]+)">(.*?)<a class="headerlink"|<dd>', text, re.DOTALL):
        if m.group(0) == "<dd>":
            if current["ids"]:
                groups.append(current)
            current = {"ids": [], "names": []}
            continue
        name = htmllib.unescape(re.sub(r"<[^>]+>", "", m.group(2))).strip()
        current["ids"].append(m.group(1))
        current["names"].append(name)
    return groups


def _start_probe(pages: list[Path], glossary: list[dict], tmp: Path) -> subprocess.Popen:
    """Start Chromium on a page that loads ``pages`` one by one and runs probe.js's checks on each."""
    probe = tmp / "probe.html"
    script = (
        PROBE_JS.read_text()
        .replace("__PAGES__", json.dumps([p.as_uri() for p in pages]))
        .replace("__GLOSSARY__", json.dumps(glossary))
        .replace("__CHECKS__", json.dumps(CHECKS))
    )
    probe.write_text(PROBE.replace("__SCRIPT__", script))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=120000",
        "--dump-dom",
        probe.as_uri(),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _probe_results(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=300)
    start = out.index("RESULT") + len("RESULT")
    end = out.index("</pre>", start)
    return json.loads(htmllib.unescape(out[start:end]))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    if not (HTML / "index.html").exists():
        pytest.skip("the book is not built: run `make book` first")
    pages = _pages()
    missing = [p for p in pages if not p.exists()]
    assert not missing, f"pages missing from the build: {missing}"
    tmp = tmp_path_factory.mktemp("chromium")
    # Screenshots for a person to look at (the landing page and one chapter with formulas; every chapter
    # with BOOK_SCREENSHOTS=all), taken four at a time alongside the probe.
    shots = [
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,1600",
            "--virtual-time-budget=5000",
            f"--user-data-dir={tmp / ('profile-' + page.stem)}",
            f"--screenshot={tmp / (page.stem + '.png')}",
            page.as_uri(),
        ]
        for page in _screenshot_pages()
    ]
    running: list[subprocess.Popen] = []
    probe_proc = _start_probe(pages, glossary_terms(HTML / "book" / "glossary.html"), tmp)
    for cmd in shots:
        while len([p for p in running if p.poll() is None]) >= 4:
            time.sleep(0.2)
        running.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    results = _probe_results(probe_proc)
    for p in running:
        p.wait(timeout=120)
    parsed = {Path(unquote(urlparse(k).path)): v for k, v in results.items()}
    errors = {p.name: v["probeError"] for p, v in parsed.items() if "probeError" in v}
    assert not errors, f"the probe failed on {errors}"
    return parsed, tmp


def _defects(results: dict, check: str) -> dict[str, list[str]]:
    return {p.stem: r["checks"][check] for p, r in results.items() if r["checks"][check]}


@pytest.mark.parametrize("check", CHECKS)
def test_pages_have_no_rendering_defects(rendered, check):
    results, _ = rendered
    found = _defects(results, check)
    new = {page: items for page, items in found.items() if (page, check) not in KNOWN_DEFECTS}
    fixed = [page for (page, c) in KNOWN_DEFECTS if c == check and page not in found]
    lines = [
        f"{page}: {len(items)} x {check}: " + " | ".join(items[:4]) for page, items in sorted(new.items())
    ]
    lines += [f"{page}: no longer shows {check!r}: delete it from KNOWN_DEFECTS" for page in fixed]
    assert not lines, "\n".join(lines)


def test_mathjax_and_widgets_are_served_by_the_book():
    """The pages load MathJax and the widget embedder from the book's own _static (no network)."""
    page = HTML / "notebooks" / "ch02_cnn_basics.html"
    if not page.exists():
        pytest.skip("the book is not built")
    text = page.read_text()
    srcs = re.findall(r'<script[^>]*src="([^"]*(?:mathjax|MathJax|tex-[a-z-]+\.js)[^"]*)"', text)
    assert srcs and all(s.startswith("../_static/") for s in srcs), srcs
    assert "cdn.jsdelivr" not in text and "cdnjs" not in text
    # the widget embedder likewise, on a chapter with widgets
    widgets = (HTML / "notebooks" / "ch01_knn.html").read_text()
    assert "application/vnd.jupyter.widget-view+json" in widgets
    assert re.search(r'<script[^>]*src="\.\./_static/widgets/embed\.js', widgets)
    assert "cdn.jsdelivr" not in widgets and "require.min.js" not in widgets


def test_formulas_are_typeset(rendered):
    results, _ = rendered
    with_math = {p.stem: r for p, r in results.items() if r["mathSource"]}
    assert with_math, "no page has any formula"
    untypeset = [page for page, r in with_math.items() if r["mathjax"] == 0]
    assert not untypeset, f"MathJax typeset nothing on {untypeset}"


def test_intro_links_the_api_reference_and_the_performance_appendix(rendered):
    results, _ = rendered
    intro = next(r for p, r in results.items() if p.stem == "intro")
    texts = [t.lower() for t in intro["linkTexts"]]
    assert "api reference" in texts and "performance appendix" in texts, texts


def test_every_chapter_renders_with_figures_and_working_images(rendered):
    results, _ = rendered
    chapters = {p: r for p, r in results.items() if p.parent.name == "notebooks"}
    assert chapters, "no chapter pages rendered"
    for page, r in results.items():
        broken = [im["src"] for im in r["imgs"] if not im["ok"]]
        assert not broken, f"{page.name}: broken images {broken}"
    for page, r in chapters.items():
        figures = [c for c in r["cells"] if c["img"]]
        assert figures, f"{page.name}: no figure in any cell output"
        assert r["errors"] == 0, f"{page.name}: shows {r['errors']} error output(s)"


def test_links_inside_the_book_resolve(rendered):
    results, _ = rendered
    for page, r in results.items():
        for href in r["links"]:
            url = urlparse(href)
            if url.scheme != "file":
                continue
            target = Path(unquote(url.path))
            assert target.exists(), f"{page.name}: link to missing {target}"


def test_widget_cells_render_offline_with_a_static_figure_beside_them(rendered):
    results, _ = rendered
    widgets = [p.name for p, r in results.items() if any(c["widget"] for c in r["cells"])]
    # chapters 1 (k slider), 2 (kernel explorer), 7 (overlay) and 8 (IoU, NMS) have widgets
    assert len(widgets) >= 4, f"widget cells found only in {widgets}"
    for page, r in results.items():
        cells = r["cells"]
        for i, c in enumerate(cells):
            if c["widget"]:
                # the stored view is drawn by the book's own widget embedder (book/_static/widgets)
                assert c["widgetRendered"], f"{page.name}: widget cell {i} was not rendered"
                near = cells[max(0, i - 1) : i + 2]
                assert any(n["img"] for n in near), (
                    f"{page.name}: widget cell {i} has no static figure beside it"
                )


def test_screenshots_were_taken(rendered):
    _, tmp = rendered
    shots = list(tmp.glob("*.png"))
    assert len(shots) == len(_screenshot_pages()) and all(s.stat().st_size > 10_000 for s in shots)


def test_glossary_terms_parse_with_their_aliases():
    page = HTML / "book" / "glossary.html"
    if not page.exists():
        pytest.skip("the book is not built")
    groups = glossary_terms(page)
    names = [n for g in groups for n in g["names"]]
    assert names == sorted(names, key=str.lower) or len(groups) >= 30
    nms = next(g for g in groups if "NMS" in g["names"])
    assert "Non-maximum suppression" in nms["names"] and len(nms["ids"]) == 2


BROKEN_PAGE = """<html><body><main><article>
<h1>Toy chapter</h1>
<p>The formula $$\\frac{a}{b}$$ stayed source, and a caption leaked :width: 90 percent.</p>
<p>See the API reference and the glossary for the receptive field.</p>
<p>The GIoU $a</p><ul><li><p>b \\setminus c$ became a bullet.</p></li></ul>
<p>In code font: <code class="docutils literal notranslate">C^T y</code>; a broken role:
<code class="xref py py-func docutils literal notranslate">cvlib.nothing</code>.</p>
<div class="cell"><div class="cell_output"><div class="output"><pre style="width:200px;overflow:auto">
WIDE_OUTPUT</pre></div></div></div>
<div class="cell"><div class="cell_input"><pre style="width:200px;overflow:auto">
x = WIDE_CODE</pre></div></div>
</article></main></body></html>""".replace("WIDE_OUTPUT", "9" * 200).replace("WIDE_CODE", "1" * 200)


def test_probe_catches_each_class_of_defect(tmp_path):
    """Each check fires on a page built to show its defect, so a clean report means something."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    page = folder / "ch99_broken.html"
    page.write_text(BROKEN_PAGE)
    glossary = [{"ids": ["term-Receptive-field"], "names": ["Receptive field"]}]
    result = next(iter(_probe_results(_start_probe([page], glossary, tmp_path)).values()))
    assert "probeError" not in result, result
    checks = result["checks"]
    silent = [c for c in CHECKS if c != "wide math" and not checks[c]]  # wide math needs MathJax
    assert not silent, f"checks that missed their defect: {silent}; got {checks}"
    assert any("API reference" in t for t in checks["unlinked reference"])
    assert any("cvlib.nothing" in t for t in checks["unlinked reference"])
    assert checks["unlinked glossary term"] == ["Receptive field"]
