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

CHAPTERS = [
    ("1  k-NN baseline", 0, 3, "#d9e8f5"),
    ("2  CNN basics", 1, 3, "#d9e8f5"),
    ("3  LeNet, AlexNet, VGG", 2, 4, "#fde2c8"),
    ("4  Going deeper", 3, 4, "#fde2c8"),
    ("5  Comparing nets", 4, 4.6, "#fde2c8"),
    ("6  Coarse vs fine", 4, 3.4, "#fde2c8"),
    ("7  Segmentation", 4, 2.3, "#d8f0d2"),
    ("8  Detection", 4, 1.2, "#d8f0d2"),
    ("9  Augmentation", 2, 0.6, "#eadcf5"),
    ("10 Distillation", 3, 0.6, "#eadcf5"),
    ("11 MobileNetV2", 5, 4, "#eadcf5"),
    ("12 Grad-CAM", 5, 2.8, "#eadcf5"),
    ("13 pix2pix", 5, 1.8, "#eadcf5"),
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


def course_map(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 5))
    pos = {}
    for i, (label, x, y, color) in enumerate(CHAPTERS):
        pos[i] = (x * 2.0, y)
        ax.add_patch(
            FancyBboxPatch(
                (x * 2.0 - 0.85, y - 0.25), 1.7, 0.5, boxstyle="round,pad=0.05", fc=color, ec="#444"
            )
        )
        ax.text(x * 2.0, y, label, ha="center", va="center", fontsize=9)
    for a, b in EDGES:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate(
            "", (x1 - 0.9, y1), (x0 + 0.9, y0), arrowprops=dict(arrowstyle="->", color="#777", lw=0.8)
        )
    handles = [
        plt.Rectangle((0, 0), 1, 1, fc=c, ec="#444") for c in ("#d9e8f5", "#fde2c8", "#d8f0d2", "#eadcf5")
    ]
    ax.legend(
        handles, ["foundations", "classification", "dense prediction", "beyond"], loc="upper left", ncol=4
    )
    ax.set_xlim(-1.2, 11.2)
    ax.set_ylim(0, 5.6)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
