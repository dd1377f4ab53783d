"""Fast-dev-run of the full configuration: every chapter at ``CVLIB_SIZE=full`` with every loop
capped to one step, on fixture data in the real formats, offline; any exception fails.

Also checks the fixture cache itself: each loader reads it through the test-only checksum
override, and refuses it without the override (the users' checksum guarantees are intact).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.fastdev import fixtures

CHAPTERS = fixtures.chapters()
CELL_TIMEOUT = 300  # seconds per cell; the slowest full-configuration cell takes about 20 s here


@pytest.mark.fastdev
@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_full_configuration(md: Path, fastdev_env: dict[str, str]) -> None:
    result = fixtures.run_chapter(md, fastdev_env, timeout=CELL_TIMEOUT)
    report = os.environ.get("CVLIB_FASTDEV_REPORT")
    if report:  # one JSON line per chapter, for the runtime table
        with open(report, "a") as f:
            f.write(
                json.dumps(
                    {k: v for k, v in result.__dict__.items() if k not in ("error_source", "error_trace")}
                )
                + "\n"
            )
    if not result.ok:
        hint = ""
        if result.error and result.error.startswith("AssertionError"):
            hint = (
                "\n(an assertion on a measured number? Under CVLIB_FAST_DEV_RUN nothing is trained: guard "
                "the chapter's lesson checks with `if not cvlib.fast_dev_run():`)"
            )
        elif result.error and "values" in result.error and "epoch" in (result.error_source or ""):
            hint = "\n(fit runs one epoch under CVLIB_FAST_DEV_RUN: take the epoch axis from the history)"
        pytest.fail(
            f"{md.name} (CVLIB_SIZE=full, CVLIB_FAST_DEV_RUN={fixtures.FAST_DEV_STEPS}) failed in cell "
            f"{result.error_cell} after {result.seconds:.0f} s:\n{result.error}\n--- cell source ---\n"
            f"{result.error_source}\n--- traceback (end) ---\n{result.error_trace}{hint}",
            pytrace=False,
        )


def _in_cache(env: dict[str, str], code: str, override: bool = True) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with the fast-dev-run environment (offline shim included)."""
    run_env = {**os.environ, **env}
    if not override:
        run_env.pop("CVLIB_CHECKSUMS_OVERRIDE")
    cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300)


@pytest.mark.fastdev
def test_loaders_read_the_fixture_cache(fastdev_env: dict[str, str], tmp_path: Path) -> None:
    import shutil

    env = {**fastdev_env, "CVLIB_DATA": str(tmp_path / "data")}
    shutil.copytree(fastdev_env["CVLIB_DATA"], env["CVLIB_DATA"])  # unpacking changes the cache
    code = """
import json, torch
from cvlib.data import load_mnist, load_fashion_mnist, load_cifar10, load_isbi2012
from cvlib.data.pets import OxfordIIITPet
from cvlib.data.voc import load_voc2007
out = {}
x, y = load_mnist(split="train"); out["mnist"] = [list(x.shape), y.bincount().tolist()]
x, y = load_fashion_mnist(split="test"); out["fashion"] = [list(x.shape)]
x, y = load_cifar10(split="train"); out["cifar"] = [list(x.shape), y.bincount().tolist()]
x, m = load_isbi2012(); out["isbi"] = [list(x.shape), list(m.shape), sorted(m.unique().tolist())]
ds = OxfordIIITPet(split="test", target="all", image_size=224)
img, t = ds[3]
breeds = len(set(b for _, b, _ in ds.samples))
out["pets"] = [len(ds), breeds, list(img.shape), sorted(t["mask"].unique().tolist())]
tv, te = load_voc2007(image_set="trainval", keep_difficult=False), load_voc2007(image_set="test")
img, t = tv[2]
difficult = bool(tv.annotation(2)["difficult"].any())
out["voc"] = [len(tv), len(te), list(img.shape[:1]), t["boxes"].shape[1], difficult]
print(json.dumps(out))
"""
    proc = _in_cache(env, code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mnist"] == [[300, 1, 28, 28], [30] * 10]
    assert out["fashion"] == [[100, 1, 28, 28]]
    assert out["cifar"] == [[300, 3, 32, 32], [30] * 10]
    assert out["isbi"] == [[30, 1, 512, 512], [30, 512, 512], [0, 1]]
    assert out["pets"] == [37, 37, [3, 224, 224], [0, 1, 255]]
    assert out["voc"] == [12, 8, [3], 4, False]


@pytest.mark.fastdev
def test_fixture_files_fail_the_published_checksums(tmp_path: Path) -> None:
    # A fresh cache: the session's cache may hold archives that chapters already unpacked under
    # the override (the digests recorded at extraction are then those of the fixture files).
    env = fixtures.build_cache(tmp_path, [])
    for call in (
        "from cvlib.data import load_mnist; load_mnist(split='train')",
        "from cvlib.data import load_cifar10; load_cifar10(split='test')",
        "from cvlib.data import load_isbi2012; load_isbi2012()",
        "from cvlib.data.pets import OxfordIIITPet; OxfordIIITPet(split='test')",
        "from cvlib.data.voc import load_voc2007; load_voc2007(image_set='test')",
    ):
        proc = _in_cache(env, call, override=False)
        assert proc.returncode != 0, f"{call} accepted fixture files without the override"
        assert "ChecksumError" in proc.stderr or "offline" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.fastdev
def test_weight_files_have_torchvision_layout(fastdev_env: dict[str, str]) -> None:
    models = fixtures.weight_models_for(CHAPTERS)
    specs = fixtures.weight_specs()
    manifest = json.loads(fixtures.MANIFEST.read_text())["models"]
    for model in models:
        for _, spec in specs[model]:
            path = Path(fastdev_env["CVLIB_DATA"]) / "weights" / spec.url.rsplit("/", 1)[-1]
            state = torch.load(path, map_location="cpu", weights_only=True)
            assert {k: "x".join(map(str, v.shape)) for k, v in state.items()} == manifest[model]


def test_offline_shim_refuses_the_network(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(fixtures._SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = """
import socket
try:
    socket.getaddrinfo("download.pytorch.org", 443)
except OSError as e:
    print("dns", e)
try:
    socket.create_connection(("8.8.8.8", 53), timeout=1)
except OSError as e:
    print("ip", e)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
c = socket.create_connection(s.getsockname())
print("loopback ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "dns fast-dev-run is offline" in proc.stdout.replace("[Errno -2] ", "")
    assert "ip " in proc.stdout and "offline" in proc.stdout.split("ip ", 1)[1]
    assert "loopback ok" in proc.stdout


def test_models_with_weights_scan(tmp_path: Path) -> None:
    md = tmp_path / "chX.md"
    md.write_text(
        '```{code-cell} ipython3\nm = create_model("resnet18", weights="imagenet")\n```\n'
        '```{code-cell} ipython3\nd = create_model("fcos_resnet50_fpn",\n'
        '                 weights_backbone="imagenet")\n```\n'
        '```{code-cell} ipython3\nv = create_model("vgg16")\n```\n'
        '```{code-cell} ipython3\ncfg = pick(small=dict(arch="simple_cnn", weights=None),\n'
        '           full=dict(arch="resnet34", weights="imagenet"))\n```\n'
        '```{code-cell} ipython3\nknn = KNN(weights=None)\nname = "alexnet"\n```\n'
    )
    assert fixtures.models_with_weights(md) == ["resnet18", "resnet34", "resnet50"]
    md.write_text('```{code-cell} ipython3\ncfg = dict(backbone={"weights_backbone": "imagenet"})\n```\n')
    assert fixtures.models_with_weights(md) == ["resnet50"]


def test_models_with_weights_scan_sees_deeplabs_backbone_weights(tmp_path: Path) -> None:
    md = tmp_path / "chY.md"
    cell = 'm = create_model("deeplabv3plus_resnet50", backbone_weights="imagenet")'
    md.write_text(f"```{{code-cell}} ipython3\n{cell}\n```\n")
    assert fixtures.models_with_weights(md) == ["resnet50"]


def test_run_chapter_reports_the_failing_cell(tmp_path: Path) -> None:
    md = tmp_path / "chXX_demo.md"
    md.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n---\n\n# Demo\n\n"
        "```{code-cell} ipython3\nimport os\nx = os.environ['CVLIB_DEMO']\n```\n\n"
        "```{code-cell} ipython3\n:tags: [raises-exception]\n\n1 / 0\n```\n\n"
        "Some prose.\n\n"
        "```{code-cell} ipython3\nassert x == 'no', f'x is {x}'\n```\n\n"
        "```{code-cell} ipython3\nraise KeyError('later')\n```\n"
    )
    r = fixtures.run_chapter(md, {"CVLIB_DEMO": "yes"}, timeout=60)
    assert not r.ok and r.error_cell == 4 and r.error == "AssertionError: x is yes"
    assert r.error_source.startswith("assert x ==") and "AssertionError" in r.error_trace
    assert sorted(r.cell_seconds) == [1, 2, 4] and r.cpu_seconds > 0 and r.peak_rss_mib > 10
    r = fixtures.run_chapter(md, {"CVLIB_DEMO": "yes"}, timeout=60, keep_going=True)
    assert r.error_cell == 4 and r.later_errors == ["cell 5 KeyError: 'later'"]
