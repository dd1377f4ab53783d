"""The generated API pages (book/api/*.md) match the library and are all in the table of contents."""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_api_page  # noqa: E402


def _toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        for v in node.values():
            out += _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            out += _toc_files(v)
    return out


def test_api_pages_are_current():
    pages = make_api_page.render_all()
    stale = [p.name for p, text in pages.items() if not p.exists() or p.read_text() != text]
    extra = [p.name for p in make_api_page.API_DIR.glob("*.md") if p not in pages]
    assert not stale and not extra, (
        f"book/api is out of date (differ: {stale}, no longer generated: {extra}): "
        "run `python tools/make_api_page.py`"
    )


def test_every_public_module_has_a_page():
    documented = make_api_page._documented()
    for name in ("cvlib.runtime", "cvlib.ops.boxes", "cvlib.train.loop", "cvlib.models._registry"):
        assert name in documented, f"{name} is on no API page"
    # a module on two pages would give duplicate object descriptions
    mods = [m for p in make_api_page.PAGES for m in make_api_page.page_modules(p)]
    assert len(mods) == len(set(mods))


def test_reexports_link_to_their_full_entries():
    text = make_api_page.render_all()[make_api_page.API_DIR / "ops.md"]
    assert ".. py:function:: nms(" in text and ":func:`cvlib.ops.boxes.nms`" in text


def test_api_pages_are_in_the_toc():
    toc = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    missing = [f for f in make_api_page.toc_files() if f not in toc]
    assert not missing, f"_toc.yml lacks the API pages {missing} (put them under book/api/index)"
