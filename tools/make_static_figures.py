"""Draw the book's static figures (logo, course map) into book/_static.

Run: python tools/make_static_figures.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "book" / "_static"

# (label, column, row, group colour). Two short lines per box keep the text large when the map is
# shown at the width of the book's text column (about 800 px).
CHAPTERS = [
    ("1 k-NN\nbaseline", 0, 3, "#d9e8f5"),
    ("2 CNN\nbasics", 1, 3, "#d9e8f5"),
    ("3 LeNet,\nAlexNet, VGG", 2, 4, "#fde2c8"),
    ("4 Going\ndeeper", 3, 4, "#fde2c8"),
    ("5 Comparing\nnets", 4, 4.9, "#fde2c8"),
    ("6 Coarse\nvs fine", 4, 3.8, "#fde2c8"),
    ("7 Segmen-\ntation", 4, 2.5, "#d8f0d2"),
    ("8 Detection", 4, 1.3, "#d8f0d2"),
    ("9 Augmen-\ntation", 2, 0.6, "#eadcf5"),
    ("10 Distil-\nlation", 3, 0.6, "#eadcf5"),
    ("11 Mobile-\nNetV2", 5, 4.3, "#eadcf5"),
    ("12 Grad-CAM", 5, 2.9, "#eadcf5"),
    ("13 pix2pix", 5, 1.6, "#eadcf5"),
]
EDGES = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (3, 5),
    (1, 6),
    (3, 6),
    (3, 7),
    (1, 8),
    (2, 9),
    (4, 10),
    (3, 11),
    (6, 12),
]
GROUPS = [
    ("foundations", "#d9e8f5"),
    ("classification", "#fde2c8"),
    ("dense prediction", "#d8f0d2"),
    ("beyond", "#eadcf5"),
]
BOX_W, BOX_H, STEP = 1.6, 0.8, 2.0


def course_map(path: Path) -> None:
    """The chapters as boxes, an arrow from each chapter to the ones that build on it.

    Drawn at 9 x 6.2 inches with 12-point labels: at the text column's width the labels are
    about 14 px high.
    """
    fig, ax = plt.subplots(figsize=(9, 6.2))
    pos, boxes = {}, {}
    for i, (label, col, row, color) in enumerate(CHAPTERS):
        x = col * STEP
        pos[i] = (x, row)
        boxes[i] = FancyBboxPatch(
            (x - BOX_W / 2, row - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.04", fc=color, ec="#444"
        )
        ax.add_patch(boxes[i])
        ax.text(x, row, label, ha="center", va="center", fontsize=12, linespacing=1.1)
    for a, b in EDGES:
        # Arrows run centre to centre and are clipped at the two boxes' outlines; the one from
        # chapter 4 to 12 bends around chapter 6's box.
        bend = 0.2 if (a, b) == (3, 11) else 0.0
        ax.annotate(
            "",
            pos[b],
            pos[a],
            arrowprops=dict(
                arrowstyle="->",
                color="#555",
                lw=1.2,
                patchA=boxes[a],
                patchB=boxes[b],
                shrinkA=2,
                shrinkB=2,
                connectionstyle=f"arc3,rad={bend}",
            ),
        )
    handles = [plt.Rectangle((0, 0), 1, 1, fc=c, ec="#444") for _, c in GROUPS]
    ax.legend(
        handles,
        [name for name, _ in GROUPS],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.02),
        ncol=4,
        fontsize=12,
        frameon=False,
    )
    ax.set_xlim(-BOX_W / 2 - 0.1, 5 * STEP + BOX_W / 2 + 0.1)
    ax.set_ylim(0.1, 5.4)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def logo(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.add_patch(plt.Rectangle((0.1, 0.1), 0.8, 0.8, fc="#1f4e79"))
    ax.add_patch(plt.Circle((0.5, 0.5), 0.25, fc="white"))
    ax.add_patch(plt.Circle((0.5, 0.5), 0.11, fc="#e07b00"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    fig.savefig(path, dpi=64, transparent=True)
    plt.close(fig)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    course_map(OUT / "course_map.png")
    logo(OUT / "logo.png")
