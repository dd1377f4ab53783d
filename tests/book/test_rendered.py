"""Render the built book in headless Chromium and check every chapter page.

Needs `_build/html` (``make book``; ``make test`` builds it before running pytest) and Debian's
``chromium``. Checks per chapter: every image loads, every link inside the book points to a file
that exists, the page has at least one figure, and every widget cell sits next to a cell that shows
a static picture (the widget JavaScript comes from a CDN the offline book cannot reach);
progress bars (tqdm.auto) are widgets too but need no picture.
Screenshots go to pytest's temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """
<html><body><pre id="out">pending</pre><iframe id="f" width="1280" height="1000"></iframe>
<script>
const pages = %s;
const results = {};
const frame = document.getElementById('f');
let i = 0;
function next() {
  if (i >= pages.length) {
    document.getElementById('out').textContent = 'RESULT' + JSON.stringify(results); return;
  }
  frame.onload = () => setTimeout(() => {
    const d = frame.contentDocument;
    const main = d.querySelector('main') || d.body;
    const imgs = Array.from(main.querySelectorAll('img')).map(im => ({
      src: im.getAttribute('src'), ok: im.complete && im.naturalWidth > 0}));
    const links = Array.from(main.querySelectorAll('a[href]')).map(a => a.href);
    const stateTag = d.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
    const state = stateTag ? (JSON.parse(stateTag.textContent).state || {}) : {};
    const isProgressBar = id => {  // tqdm.auto draws an HBox holding a FloatProgress
      const m = state[id];
      if (!m || m.model_name !== 'HBoxModel') return false;
      return (m.state.children || []).some(ref => {
        const child = state[String(ref).replace('IPY_MODEL_', '')];
        return child && child.model_name === 'FloatProgressModel';
      });
    };
    const cells = Array.from(main.querySelectorAll('div.cell')).map(c => ({
      widget: Array.from(c.querySelectorAll('script[type*="widget-view"]')).some(
        v => !isProgressBar(JSON.parse(v.textContent).model_id)),
      img: !!c.querySelector('.cell_output img')}));
    results[pages[i]] = {imgs, links, cells, title: d.title,
      errors: main.querySelectorAll('.output.traceback, .output.error').length};
    i += 1; next();
  }, 300);
  frame.src = pages[i];
}
next();
</script></body></html>
"""


def _chapter_pages() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [HTML / f"{f}.html" for f in files if f.startswith("notebooks/")]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    if not (HTML / "index.html").exists():
        pytest.skip("the book is not built: run `make book` first")
    pages = _chapter_pages()
    missing = [p for p in pages if not p.exists()]
    assert not missing, f"chapter pages missing from the build: {missing}"
    tmp = tmp_path_factory.mktemp("chromium")
    probe = tmp / "probe.html"
    probe.write_text(PROBE % json.dumps([p.as_uri() for p in pages]))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=60000",
        "--dump-dom",
        probe.as_uri(),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    start = out.index("RESULT") + len("RESULT")
    end = out.index("</pre>", start)
    results = json.loads(out[start:end].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    for page in pages:  # a screenshot per chapter, for a person to look at
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,1600",
                f"--user-data-dir={tmp / 'profile'}",
                f"--screenshot={tmp / (page.stem + '.png')}",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )
    return {Path(unquote(urlparse(k).path)): v for k, v in results.items()}, tmp


def test_every_chapter_renders_with_figures_and_working_images(rendered):
    results, _ = rendered
    assert results, "no chapter pages rendered"
    for page, r in results.items():
        broken = [im["src"] for im in r["imgs"] if not im["ok"]]
        assert not broken, f"{page.name}: broken images {broken}"
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


def test_widget_cells_have_a_static_figure_beside_them(rendered):
    results, _ = rendered
    widgets = [p.name for p, r in results.items() if any(c["widget"] for c in r["cells"])]
    # chapters 1 (k slider), 2 (kernel explorer), 7 (overlay) and 8 (IoU, NMS) have widgets
    assert len(widgets) >= 4, f"widget cells found only in {widgets}"
    for page, r in results.items():
        cells = r["cells"]
        for i, c in enumerate(cells):
            if c["widget"]:
                near = cells[max(0, i - 1) : i + 2]
                assert any(n["img"] for n in near), (
                    f"{page.name}: widget cell {i} has no static figure beside it"
                )


def test_screenshots_were_taken(rendered):
    results, tmp = rendered
    shots = list(tmp.glob("*.png"))
    assert len(shots) == len(results) and all(s.stat().st_size > 10_000 for s in shots)
