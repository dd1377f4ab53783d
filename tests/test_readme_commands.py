"""The commands the README and the how-to-run page give a new user exist and work.

Every shell command in their ``bash`` code blocks and in inline code that starts with ``make`` or
``.venv/bin/`` is split at ``&&`` and checked: each ``make`` target exists and expands
(``make -n``, which prints the recipe without running it), each file it names exists, and, where the
virtual environment exists, each ``.venv/bin/`` program starts (``jupyter lab --version``: the
README's local run needs JupyterLab, which ``make venv`` installs).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "book" / "how_to_run.md"]
VENV = ROOT / ".venv"


def commands(text: str) -> list[str]:
    """Shell commands in ```bash blocks (comments dropped) and in `make ...`/`.venv/bin/...` spans."""
    out: list[str] = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out += [c.strip() for c in line.split("&&")]
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.match(r"^(?:[A-Z_]+=\S+\s+)*(?:make\s|\.venv/bin/)", span):
            out += [c.strip() for c in span.split("&&")]
    return out


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE))


def _parse(cmd: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(cmd)
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    return env, words


ALL = sorted({c for doc in DOCS for c in commands(doc.read_text())})


def test_the_docs_give_the_local_run_commands():
    assert "make venv" in ALL and "make book" in ALL and "make test" in ALL
    assert any(c.startswith(".venv/bin/jupyter lab") for c in ALL), ALL


@pytest.mark.parametrize("cmd", [c for c in ALL if _parse(c)[1][:1] == ["make"]])
def test_make_commands_name_existing_targets_that_expand(cmd):
    env, words = _parse(cmd)
    targets = [w for w in words[1:] if "=" not in w]
    assert targets, cmd
    missing = [t for t in targets if t not in _make_targets()]
    assert not missing, f"{cmd!r}: the Makefile has no target {missing}"
    args = []
    for w in words[1:]:  # NB=notebooks/ch04_going_deeper.md names a file that must exist
        if "=" in w and "/" in w.split("=", 1)[1]:
            key, path = w.split("=", 1)
            if "chNN" in path:  # a placeholder: dry-run it with a real chapter
                path = str(sorted((ROOT / "notebooks").glob("ch*.md"))[0].relative_to(ROOT))
            assert (ROOT / path).exists(), f"{cmd!r}: {w} names a missing file"
            w = f"{key}={path}"
        args.append(w)
    dry = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, f"make -n {' '.join(args)}: {dry.stderr}"


@pytest.mark.parametrize(
    "cmd", [c for c in ALL if _parse(c)[1][:1] and _parse(c)[1][0].startswith(".venv/bin/")]
)
def test_venv_programs_start(cmd):
    _, words = _parse(cmd)
    exe = ROOT / words[0]
    if not VENV.exists():
        pytest.skip("no .venv here (make venv creates it)")
    assert exe.exists(), f"{cmd!r}: {words[0]} is not installed by make venv"
    probe = [str(exe), *words[1:2], "--version"] if words[0].endswith("jupyter") else [str(exe), "--version"]
    run = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{' '.join(probe)} failed: {run.stderr[-500:]}"
    for arg in words[2:] if words[0].endswith("jupyter") else []:
        if not arg.startswith("-"):
            assert (ROOT / arg).exists(), f"{cmd!r}: {arg} does not exist"


def test_commands_parser_reads_blocks_and_spans():
    text = (
        "```bash\nmake venv   # comment\n# only a comment\n```\nThen `make venv && .venv/bin/jupyter lab x/`."
    )
    assert commands(text) == ["make venv", "make venv", ".venv/bin/jupyter lab x/"]
