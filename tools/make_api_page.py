"""Write book/api.md: one autodoc section per public cvlib module (run after adding a module).

A test (tests/test_api_page.py) fails when the committed page is out of date.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

import cvlib

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "api.md"
GROUPS = [
    ("Run-time switches", "cvlib.runtime"),
    ("k-NN", "cvlib.knn"),
    ("Data", "cvlib.data"),
    ("Classification models", "cvlib.models.classification"),
    ("Segmentation models", "cvlib.models.segmentation"),
    ("Detection models", "cvlib.models.detection"),
    ("Model registry", "cvlib.models._registry"),
    ("Shared layers", "cvlib.models._layers"),
    ("Operations", "cvlib.ops"),
    ("Training", "cvlib.train"),
    ("Metrics", "cvlib.metrics"),
    ("Visualisation", "cvlib.viz"),
    ("Widgets", "cvlib.widgets"),
]


def public_modules(prefix: str) -> list[str]:
    names = [prefix]
    mod = __import__(prefix, fromlist=["_"])
    if hasattr(mod, "__path__"):
        names = []
        for info in pkgutil.iter_modules(mod.__path__):
            if not info.name.startswith("_"):
                names.append(f"{prefix}.{info.name}")
    return sorted(names)


def render() -> str:
    out = [
        "(api)=",
        "# API reference",
        "",
        "Generated from the docstrings of `cvlib` (regenerate with `python tools/make_api_page.py`).",
        "Shapes are given in the type slot (`Tensor[N, 4]`); boxes are xyxy in absolute pixels.",
        "",
    ]
    for title, prefix in GROUPS:
        mods = public_modules(prefix)
        if not mods:
            continue
        out += [f"## {title}", ""]
        for m in mods:
            out += [f"### `{m}`", "", "```{eval-rst}", f".. automodule:: {m}", "   :members:", "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    assert cvlib.__version__
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
