"""Numbers in chapter prose come from the stored outputs (myst-nb glue) or from a cited paper.

Two checks (``tools/prose_numbers.py``):

- every glue role or directive in ``notebooks/*.md`` names a key the stored ``.ipynb`` glued: all
  chapters;
- no bare measured number in the prose (a decimal, or three or more digits, outside a sentence
  with ``{cite}`` and not structural): only for the chapters in ``CHECKED_CHAPTERS``.

Chapter authors: once your chapter's prose numbers are glued or cited, add its stem to
``CHECKED_CHAPTERS`` (``python tools/prose_numbers.py notebooks/chNN_topic.md`` lists what is left).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import prose_numbers as pn  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = sorted(p.stem for p in NOTEBOOKS.glob("ch*.md"))

# Chapters whose prose numbers are enforced. Initially empty: chapters are being converted to glue.
CHECKED_CHAPTERS: list[str] = [
    "ch01_knn",
    "ch02_cnn_basics",
    "ch03_classic_cnns",
    "ch04_going_deeper",
    "ch05_comparing",
    "ch06_coarse_fine",
    "ch07_segmentation",
    "ch08_detection",
    "ch09_augmentation",
    "ch10_distillation",
    "ch11_mobilenetv2",
    "ch12_explanations",
    "ch13_pix2pix",
    "ch14_transfer_learning",
]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_glue_keys_exist_in_the_stored_outputs(chapter):
    md = NOTEBOOKS / f"{chapter}.md"
    if not md.with_suffix(".ipynb").exists():
        pytest.skip(f"{chapter} has no executed .ipynb yet")
    problems = pn.missing_glue_keys(md)
    assert not problems, "\n".join(problems)


def test_checked_chapters_exist():
    unknown = [c for c in CHECKED_CHAPTERS if c not in CHAPTERS]
    assert not unknown, f"CHECKED_CHAPTERS names chapters that do not exist: {unknown}"


@pytest.mark.parametrize("chapter", CHECKED_CHAPTERS)
def test_prose_numbers_are_glued_or_cited(chapter):
    findings = pn.bare_numbers((NOTEBOOKS / f"{chapter}.md").read_text())
    assert not findings, (
        f"{chapter}: numbers in the prose that are neither glued ({{glue:text}}`key`) nor cited "
        "nor structural:\n" + "\n".join(map(str, findings))
    )


# ----------------------------------------------------------------- the checker itself, on toy text
TOY = """---
kernelspec:
  name: python3
---

(ch-toy)=
# Toy 3x3 chapter

The model reaches 91.3% accuracy after 1,347 steps.
{glue:text}`acc:.1%` is glued, so this sentence is fine: {glue:text}`n_steps`.
ResNet-50 reaches 76.1% top-1 {cite}`he2016deep`. VGG-16 at 224 x 224 uses 138 million weights.
A 16-layer net from 2014 has 512 channels and 3x3 kernels at 224 px (Table 3, Fig. 2).
PyTorch 2.13 reports mAP@0.5 on arXiv:1512.03385.

```{code-cell} ipython3
x = 123.456
```

$$
y = 0.125 x
$$

The inline $z = 4.5$ and `lr=0.001` are not prose.

| model | top-1 |
| --- | --- |
| AlexNet | 56.5 |

| model | top-1 {cite}`krizhevsky2012imagenet` |
| --- | --- |
| AlexNet | 57.1 |

:::{exercise}
:label: ex-toy-1.5

Show that 0.25 is a quarter.
:::

<!-- prose-numbers: allow 4.75 (a worked example's input) -->
The input 4.75 is allowed by the comment above.
"""


def test_bare_numbers_flags_measured_numbers_and_spares_the_rest():
    found = [f.number for f in pn.bare_numbers(TOY)]
    # flagged: measured numbers outside a cited sentence, in prose, table rows and exercises
    assert found == ["91.3", "1,347", "138", "56.5", "0.25"]


def test_bare_numbers_reports_the_line():
    first = pn.bare_numbers(TOY)[0]
    assert TOY.splitlines()[first.line - 1].startswith("The model reaches 91.3%")


def test_glue_refs_parse_roles_formats_and_directives():
    text = (
        "A {glue:text}`acc:.2f`, {glue}`fig_a`, {glue:}`b`, {glue:md}`c` and {glue:text}`other.md::d:.1%`.\n"
        "```{glue:figure} fig_b\n:name: fig-b\n```\n"
    )
    keys = [(k, doc) for _, k, doc in pn.glue_refs(text)]
    assert keys == [
        ("acc", None),
        ("fig_a", None),
        ("b", None),
        ("c", None),
        ("d", "other.md"),
        ("fig_b", None),
    ]
