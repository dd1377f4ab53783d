"""Write the API reference: one page per area of ``cvlib`` under ``book/api/`` (run after adding a module).

Each page documents its package's public submodules (every module whose dotted path has no part
starting with ``_``, found by walking the package, so new modules appear on the next run) with
autodoc. Names a package re-exports in ``__all__`` get a short entry under the package's own name
that links to the full one, so chapters can write ``{func}`cvlib.ops.nms``` as well as
``{func}`cvlib.ops.boxes.nms```. ``book/api/index.md`` lists the pages; ``_toc.yml`` must list them
under it (the test says which are missing).

A test (tests/test_api_page.py) fails when the committed pages are out of date or missing from the toc.

Run: python tools/make_api_page.py
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "book" / "api"
INDEX = API_DIR / "index.md"


@dataclass(frozen=True)
class Page:
    slug: str  # file name under book/api (without .md)
    title: str
    package: str  # documented with its public submodules (walked recursively)
    blurb: str
    exclude: tuple[str, ...] = ()  # sub-packages that have their own page
    extra: tuple[str, ...] = field(default=())  # private modules documented anyway


PAGES = [
    Page(
        "runtime",
        "Run-time switches",
        "cvlib.runtime",
        "The size switch, device choice, seeding and the run line every notebook prints; "
        "re-exported from `cvlib`.",
    ),
    Page("knn", "k-nearest neighbours", "cvlib.knn", "The k-NN classifier of the first chapter."),
    Page(
        "data",
        "Data",
        "cvlib.data",
        "Dataset loaders (real datasets in their original on-disk formats, checksummed), generated "
        "scenes and transforms.",
    ),
    Page(
        "models",
        "Models: registry, layers and conversions",
        "cvlib.models",
        "`create_model` / `list_models`, the shared layers and model conversions.",
        exclude=("cvlib.models.classification", "cvlib.models.segmentation", "cvlib.models.detection"),
        extra=("cvlib.models._registry", "cvlib.models._layers"),
    ),
    Page(
        "models_classification",
        "Models: classification",
        "cvlib.models.classification",
        "Classification families, one module per family.",
    ),
    Page(
        "models_segmentation",
        "Models: segmentation",
        "cvlib.models.segmentation",
        "Segmentation networks (and the pix2pix generator and discriminator).",
    ),
    Page("models_detection", "Models: detection", "cvlib.models.detection", "Object detectors."),
    Page("ops", "Operations", "cvlib.ops", "Boxes, anchors, RoI pooling, losses, convolution arithmetic."),
    Page("train", "Training", "cvlib.train", "`fit`, `evaluate`, `predict`, checkpoints, distillation."),
    Page("metrics", "Metrics", "cvlib.metrics", "Classification, segmentation and detection metrics."),
    Page("viz", "Visualisation", "cvlib.viz", "Plots and concept diagrams (matplotlib)."),
    Page(
        "widgets",
        "Widgets",
        "cvlib.widgets",
        "Interactive ipywidgets views; each has a static twin that the offline book shows.",
    ),
]


def _is_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def page_modules(page: Page) -> list[str]:
    """The modules documented on ``page``: the package (if a plain module) or its public submodules."""
    mod = importlib.import_module(page.package)
    if not hasattr(mod, "__path__"):
        return [page.package]
    names = list(page.extra)
    for info in pkgutil.walk_packages(mod.__path__, prefix=page.package + "."):
        if not _is_public(info.name) or any(
            info.name == ex or info.name.startswith(ex + ".") for ex in page.exclude
        ):
            continue
        names.append(info.name)
    return sorted(set(names), key=lambda n: (n.startswith(page.package + "._"), n))


def _documented() -> dict[str, str]:
    """Every documented module -> the page slug it is on."""
    return {m: p.slug for p in PAGES for m in page_modules(p)}


def _signature(obj: object) -> str:
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"
    parts = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        text = p.name
        if p.kind is p.VAR_POSITIONAL:
            text = "*" + text
        elif p.kind is p.VAR_KEYWORD:
            text = "**" + text
        if p.default is not p.empty:
            default = repr(p.default)
            text += "=" + (default if len(default) <= 30 and "\n" not in default else "...")
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def _reexports(package: str, documented: dict[str, str]) -> list[str]:
    """rST entries for the names ``package`` re-exports: a short stub linking to the full entry."""
    mod = importlib.import_module(package)
    if not hasattr(mod, "__path__") and package != "cvlib":
        return []
    out: list[str] = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name, None)
        if obj is None or isinstance(obj, types.ModuleType) or name.startswith("__"):
            continue
        home = getattr(obj, "__module__", None)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            kind, role = ("class", "class") if inspect.isclass(obj) else ("function", "func")
            if home in documented and home != package:
                target = f"{home}.{obj.__qualname__}"
                out += [
                    f".. py:{kind}:: {name}{_signature(obj)}",
                    f"   :module: {package}",
                    "",
                    f"   Re-exported; documented as :{role}:`{target}`.",
                    "",
                ]
            else:
                auto = "autoclass" if kind == "class" else "autofunction"
                out += [f".. {auto}:: {package}.{name}", ""]
        else:  # a constant: link to the submodule whose __all__ holds the same object
            homes = [
                m
                for m in documented
                if m.startswith(package + ".")
                and name in getattr(importlib.import_module(m), "__all__", [])
                and getattr(importlib.import_module(m), name) is obj
            ]
            out += [f".. py:data:: {name}", f"   :module: {package}", ""]
            out += [f"   Re-exported; documented as :data:`{homes[0]}.{name}`.", ""] if homes else []
    return out


def render_page(page: Page, documented: dict[str, str]) -> str:
    mods = page_modules(page)
    out = [
        f"(api-{page.slug.replace('_', '-')})=",
        f"# {page.title}",
        "",
        page.blurb,
        "",
        "Generated from the docstrings by `tools/make_api_page.py`; shapes are given in the type slot",
        "(`Tensor[N, 4]`), boxes are xyxy in absolute pixels.",
        "",
    ]
    pkg = "cvlib" if page.package == "cvlib.runtime" else page.package
    stubs = _reexports(pkg, documented)
    if stubs:
        out += [f"## `{pkg}`", "", f"What `import {pkg}` offers, each linked to its full entry.", ""]
        out += ["```{eval-rst}", f".. py:module:: {pkg}", "", *stubs, "```", ""]
    for m in mods:
        out += [f"## `{m}`", "", "```{eval-rst}", f".. automodule:: {m}", "   :members:", "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_index() -> str:
    out = [
        "(api)=",
        "# API reference",
        "",
        "`cvlib`'s public modules, one page per area, generated from the docstrings",
        "(`python tools/make_api_page.py`). Chapters link entries with ``{func}`cvlib.ops.nms` `` or",
        "``{class}`cvlib.knn.KNNClassifier` ``.",
        "",
        "| page | modules |",
        "| --- | --- |",
    ]
    for p in PAGES:
        mods = ", ".join(f"`{m}`" for m in page_modules(p))
        out.append(f"| {{doc}}`{p.title} <{p.slug}>` | {mods} |")
    return "\n".join(out) + "\n"


def render_all() -> dict[Path, str]:
    documented = _documented()
    pages = {API_DIR / f"{p.slug}.md": render_page(p, documented) for p in PAGES}
    pages[INDEX] = render_index()
    return pages


def toc_files() -> list[str]:
    """The toc entries the pages need, in order (index first)."""
    return ["book/api/index"] + [f"book/api/{p.slug}" for p in PAGES]


def write() -> list[Path]:
    API_DIR.mkdir(parents=True, exist_ok=True)
    pages = render_all()
    for path, text in pages.items():
        path.write_text(text)
    stale = [p for p in API_DIR.glob("*.md") if p not in pages]
    for p in stale:
        p.unlink()
    return sorted(pages)


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
