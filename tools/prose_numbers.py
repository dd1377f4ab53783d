"""Numbers in chapter prose: glued from a cell, cited, or structural.

A chapter writes a number it computed through myst-nb's ``glue``: a cell runs
``from myst_nb import glue; glue("knn_acc", acc, display=False)`` and the prose says
``{glue:text}`knn_acc:.1%` ``, so the page shows the stored output and cannot drift from it. A
published figure sits in a sentence with a ``{cite}`` role. Everything else that looks like a
measured number is reported.

Two checks, per chapter (``notebooks/chNN_topic.md`` and its executed ``.ipynb``):

- :func:`missing_glue_keys`: every glue role or directive in the ``.md`` names a key that a cell of
  the stored ``.ipynb`` glued (``tools/nb.py check`` runs it for every chapter).
- :func:`bare_numbers`: numbers in the prose (outside code, math, roles, links and directive
  options) that have a decimal point or three or more digits, and are neither in a sentence with a
  ``{cite}`` role nor structural (see ``STRUCTURAL``: years, model names such as VGG-16 or
  ResNet-50, sizes such as 3x3 or 224 x 224, powers of two from 128, figure/table/section numbers,
  software versions, ``mAP@0.5``, compound adjectives such as 16-layer). A chapter can allow more
  tokens, each with its reason, in a comment anywhere in its ``.md``::

      <!-- prose-numbers: allow 1,000 (ImageNet's class count) -->

``tests/book/test_prose_numbers.py`` enforces :func:`bare_numbers` for the chapters it lists.

Run: python tools/prose_numbers.py [notebooks/chNN_topic.md ...]   (per-chapter report)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------- glue
_GLUE_ROLE = re.compile(r"\{glue(?::(?P<kind>[a-z]*))?\}`(?P<body>[^`]+)`")
_GLUE_DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\{glue(?::[a-z]*)?\}\s+(?P<key>\S+)", re.MULTILINE)


def glue_refs(md_text: str) -> list[tuple[int, str, str | None]]:
    """Glue references in a MyST text, in order: (line, key, other document or None) for each."""
    found: list[tuple[int, str, str | None]] = []
    for m in _GLUE_ROLE.finditer(md_text):
        body, kind = m.group("body").strip(), m.group("kind") or ""
        doc = None
        if "::" in body:
            doc, body = body.split("::", 1)
        if kind == "text" and ":" in body:  # key:format_spec
            body = body.rsplit(":", 1)[0]
        found.append((m.start(), body, doc))
    for m in _GLUE_DIRECTIVE.finditer(md_text):
        key, doc = m.group("key"), None
        if "::" in key:
            doc, key = key.split("::", 1)
        found.append((m.start(), key, doc))
    found.sort(key=lambda t: t[0])
    return [(md_text.count("\n", 0, pos) + 1, key, doc) for pos, key, doc in found]


def glued_keys(nb: nbformat.NotebookNode) -> set[str]:
    """The keys that the stored outputs of ``nb`` glued (myst-nb writes them in output metadata)."""
    keys = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}) or {}
            if "scrapbook" in meta:
                keys.add(meta["scrapbook"]["name"])
    return keys


def missing_glue_keys(md: Path, ipynb: Path | None = None) -> list[str]:
    """Problems: glue keys the ``.md`` uses that the stored ``.ipynb`` (or the named document) lacks."""
    ipynb = ipynb or md.with_suffix(".ipynb")
    refs = glue_refs(md.read_text())
    if not refs:
        return []
    cache: dict[Path, set[str]] = {}

    def keys_of(path: Path) -> set[str]:
        if path not in cache:
            cache[path] = glued_keys(nbformat.read(path, as_version=4)) if path.exists() else set()
        return cache[path]

    problems = []
    for line, key, doc in refs:
        target = ipynb if doc is None else (md.parent / doc).with_suffix(".ipynb")
        if key not in keys_of(target):
            problems.append(
                f"{md}:{line}: glue key {key!r} is not in the stored outputs of {target.name} "
                f"(glue it in a cell, then: make nb NB={md})"
            )
    return problems


# ------------------------------------------------------------------------------------- bare numbers
# A number: digits with optional thousands commas, decimals and exponent.
_NUMBER = re.compile(
    r"(?<![\w.@/#-])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+(?:[eE][-+]?\d+)?|\d+)(?![\w])"
)

# Structural patterns: text that matches one of these is removed before numbers are looked for.
STRUCTURAL = {
    "year": r"\b(?:19|20)\d\d\b(?!\.\d)",
    "model name (VGG-16, ResNet-50, FCN-32s, plain-110)": r"\b[A-Za-z][A-Za-z]*[-_]?v?\d+[a-z]?\b",
    "size or kernel (3x3, 224 x 224, 7×7)": r"\b\d+\s*[x×]\s*\d+(?:\s*[x×]\s*\d+)*\b",
    "compound adjective (16-layer, 1-NN, 50-layer)": r"\b\d+-[A-Za-z]+\b",
    "pixels (224 px, 512 pixels)": r"\b\d+\s*(?:px|pixels?)\b",
    "power of two from 128 (channels, sizes, batch)": r"\b(?:128|256|512|1024|2048|4096)\b(?![.,]\d)",
    "standard input side (224, 227, 299)": r"\b(?:224|227|299)\b(?![.,]\d)",
    "figure, table, section, equation or step number": (
        r"\b(?:[Tt]able|[Ff]ig(?:ure)?\.?|[Ss]ection|[Ss]ec\.|[Ee]q(?:uation)?\.?|[Cc]hapter|[Aa]ppendix|"
        r"[Ss]tep|[Ll]ine|[Pp]age|pp?\.)\s*\(?\d+(?:[.\-–]\d+)*\)?"
    ),
    "software version (PyTorch 2.13, Python 3.11)": (
        r"\b(?:Python|PyTorch|torch|torchvision|ipywidgets|CUDA|cuDNN|NumPy|numpy|Colab|Sphinx|"
        r"MathJax|jupyter-book|Jupyter Book)\s+\d+(?:\.\d+)*"
    ),
    "metric at a threshold (mAP@0.5, AP@[.5:.95])": r"@\s*\[?[\d.:]+\]?",
    "arXiv id": r"arXiv:\s*\d{4}\.\d{4,5}",
}
_STRUCTURAL = re.compile("|".join(f"(?:{p})" for p in STRUCTURAL.values()))

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>\{[^}]*\}|[\w-]*)?")
# Fenced blocks whose content is not prose.
_CODE_FENCES = (
    "code-cell",
    "code",
    "code-block",
    "math",
    "literalinclude",
    "raw",
    "eval-rst",
    "bibliography",
    "glue",
    "glue:",
    "glue:any",
    "glue:figure",
    "glue:math",
    "glue:md",
    "mermaid",
    "graphviz",
)
_ALLOW = re.compile(r"<!--\s*prose-numbers:\s*allow\s+(?P<tokens>.*?)-->", re.DOTALL)


@dataclass(frozen=True)
class Finding:
    line: int
    number: str
    sentence: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.number!r} in: {self.sentence}"


def prose_lines(md_text: str) -> list[tuple[int, str]]:
    """(line number, text) for the prose lines: no front matter, code, math blocks or options."""
    lines = md_text.splitlines()
    out: list[tuple[int, str]] = []
    i = 0
    if lines and lines[0].strip() == "---":  # front matter
        i = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), len(lines) - 1) + 1
    stack: list[tuple[str, bool]] = []  # (closing fence, is code)
    in_math = False
    in_comment = False
    while i < len(lines):
        line, n = lines[i], i + 1
        i += 1
        stripped = line.strip()
        if in_comment:
            in_comment = "-->" not in stripped
            continue
        if stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
            continue
        m = _FENCE.match(stripped)
        if m and not in_math:
            fence, info = m.group("fence"), (m.group("info") or "")
            if (
                stack
                and not info
                and set(stripped) == {stack[-1][0][0]}
                and len(stripped) >= len(stack[-1][0])
            ):
                stack.pop()  # closing fence
                continue
            if not (stack and stack[-1][1]):  # an opener (inside code, only the closing fence counts)
                name = info.strip("{}")
                is_code = (fence[0] != ":" and not info.startswith("{")) or name in _CODE_FENCES
                stack.append((fence, is_code))
                continue
        if stack and stack[-1][1]:
            continue
        if stripped.startswith("$$"):
            rest = stripped[2:]
            if in_math:
                in_math = False
            elif "$$" not in rest:
                in_math = True
            continue
        if in_math:
            continue
        if re.match(r"^:[\w-]+:", stripped):  # directive option
            continue
        if re.match(r"^\([\w-]+\)=\s*$", stripped):  # label
            continue
        out.append((n, line))
    return out


def _clean(text: str) -> str:
    """Remove what is not prose from one paragraph: roles, inline code and math, links, HTML."""
    text = re.sub(r"\{[\w:.-]+\}`[^`]*`", " ROLE ", text)  # {cite}`x`, {glue:text}`k:.2f`, {numref}...
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"\$\$.*?\$\$", " MATH ", text)
    text = re.sub(r"(?<![\\$])\$[^$]+\$", " MATH ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"https?://\S+", " URL ", text)
    return text


def _paragraphs(lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    paras: list[list[tuple[int, str]]] = []
    prev = -1
    for n, line in lines:
        table = line.lstrip().startswith("|")
        if not line.strip():
            prev = -1
            continue
        if paras and prev == n - 1 and (table == paras[-1][-1][1].lstrip().startswith("|") or table):
            paras[-1].append((n, line))
        else:
            paras.append([(n, line)])
        prev = n
    return paras


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(*_\"'{$`\[])")


def bare_numbers(md_text: str) -> list[Finding]:
    """Numbers in the prose of ``md_text`` that are neither glued, cited nor structural."""
    allowed = set()
    for m in _ALLOW.finditer(md_text):
        allowed |= {t for t in re.findall(r"[\d][\d,.]*", re.sub(r"\([^)]*\)", " ", m.group("tokens")))}
    findings: list[Finding] = []
    for para in _paragraphs(prose_lines(md_text)):
        is_table = para[0][1].lstrip().startswith("|")
        # A table is one unit (cited if any row cites); a paragraph is split into sentences.
        units = [para] if is_table else _sentences(para)
        for unit in units:
            raw = " ".join(t for _, t in unit)
            if "{cite" in raw:
                continue
            text = _STRUCTURAL.sub(" ", _clean(raw))
            for m in _NUMBER.finditer(text):
                num = m.group("num")
                digits = num.replace(",", "").split(".")[0]
                if "." not in num and len(digits) < 3:
                    continue
                if num in allowed:
                    continue
                line = next((n for n, t in unit if num in t), unit[0][0])
                findings.append(Finding(line, num, re.sub(r"\s+", " ", raw.strip())[:160]))
    return findings


def _sentences(para: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Split a paragraph into sentences, each as its (line number, text) pieces."""
    first = para[0][0]
    text = "\n".join(t for _, t in para)
    out: list[list[tuple[int, str]]] = []
    start = 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        end = m.start() if m else len(text)
        line0 = first + text.count("\n", 0, start)
        out.append([(line0 + k, piece) for k, piece in enumerate(text[start:end].split("\n"))])
        start = m.end() if m else end
    return out


@dataclass
class Report:
    chapter: str
    missing_glue: list[str]
    bare: list[Finding]


def check_chapter(md: Path) -> Report:
    return Report(md.stem, missing_glue_keys(md), bare_numbers(md.read_text()))


def main(argv: list[str] | None = None) -> int:
    args = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    mds = args or sorted((ROOT / "notebooks").glob("ch*.md"))
    bad = 0
    for md in mds:
        r = check_chapter(md)
        print(f"{r.chapter}: {len(r.missing_glue)} missing glue key(s), {len(r.bare)} bare number(s)")
        for p in r.missing_glue:
            print("  ", p)
        for f in r.bare:
            print("   ", f)
        bad += bool(r.missing_glue or r.bare)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
