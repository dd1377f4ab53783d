"""tools/kernel_runner.py: the blocking kernel runner behind the fast dev run and the device check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from kernel_runner import Kernel, KernelError  # noqa: E402


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("kernel")
    with Kernel({"CVLIB_RUNNER_TEST": "42"}, cwd=cwd) as k:
        yield k


def test_outputs_state_env_and_cwd(kernel):
    run = kernel.execute(
        "import os, sys\nx = int(os.environ['CVLIB_RUNNER_TEST'])\nprint(x)\nprint('e', file=sys.stderr)"
    )
    assert run.ok and run.text.split() == ["42", "e"] and run.seconds >= 0
    assert kernel.execute(f"print(x + 1, os.getcwd() == {kernel.cwd!r})").text == "43 True\n"
    result = kernel.execute("x * 2")
    assert [o["data"]["text/plain"] for o in result.outputs if o["output_type"] == "execute_result"] == ["84"]


def test_an_error_is_reported_and_the_kernel_takes_the_next_cell(kernel):
    run = kernel.execute("print('before')\nraise ValueError('bad value')")
    assert not run.ok and run.error["ename"] == "ValueError" and run.error["evalue"] == "bad value"
    assert run.text == "before\n" and any("ValueError" in line for line in run.error["traceback"])
    assert kernel.execute("print('after')").text == "after\n"


def test_a_cell_past_its_timeout_is_interrupted(kernel):
    with pytest.raises(KernelError, match="longer than its timeout of 2 s"):
        kernel.execute("import time\ntime.sleep(60)", timeout=2)
    assert kernel.execute("print('still here')", timeout=30).text == "still here\n"


def test_a_dead_kernel_is_reported(tmp_path):
    with Kernel(cwd=tmp_path) as k, pytest.raises(KernelError, match="kernel died"):
        k.execute("import os\nos._exit(1)", timeout=60)
