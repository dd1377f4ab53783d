"""Run code cells one by one in a fresh Jupyter kernel, with jupyter_client's blocking client.

Used by the fast dev run of the chapters (``tests/fastdev``) and by ``tools/device_check.py``.

Why not nbclient: under pytest-xdist (two workers, nbval's kernels beside these), nbclient's
asyncio client sometimes stopped waiting for a reply it had already been sent. The kernel was idle
and the client sat in its event loop for minutes. This runner polls plain (blocking) ZMQ sockets
with a timeout, as nbval does, so a message waiting on a socket is always read. It also checks
that the kernel is still alive while it waits.

    with Kernel(env={"CVLIB_SIZE": "full"}, cwd="notebooks") as k:
        run = k.execute("print(1 + 1)", timeout=60)
    run.ok, run.text, run.seconds  # (True, "2\\n", 0.01)

``run_cells`` runs a notebook's cells in order, as a notebook front end would.
"""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL_S = 1.0  # seconds per socket poll; between polls the runner checks the deadline and the kernel
INTERRUPT_GRACE_S = 30  # seconds an interrupted cell gets to finish before the runner moves on


class KernelError(RuntimeError):
    """The kernel died, or a cell ran past its timeout (the kernel is interrupted first)."""


@dataclass
class CellRun:
    """One executed cell: wall seconds, its outputs (nbformat-style dicts) and its error, if any."""

    seconds: float
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None  # {"ename", "evalue", "traceback"} from the execute reply

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """Everything the cell printed (stdout and stderr streams, in order)."""
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream")


@dataclass
class CellFailure:
    """A code cell that raised (``error`` is "Name: value") or that the kernel did not finish."""

    index: int  # over all cells of the notebook, 0-based
    source: str
    error: str
    traceback: list[str] = field(default_factory=list)


def run_cells(
    kernel: Kernel, cells: list[Any], timeout: float, keep_going: bool = False
) -> tuple[dict[int, float], list[CellFailure]]:
    """Run the code cells of a notebook (nbformat cells) in order: each cell's seconds, and the
    failures. Cells tagged ``raises-exception`` may raise; the first other error stops the run
    unless ``keep_going``. A dead kernel or a cell past ``timeout`` always stops it."""
    seconds: dict[int, float] = {}
    failures: list[CellFailure] = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        t0 = time.perf_counter()
        try:
            run = kernel.execute(cell.source, timeout)
        except KernelError as e:
            seconds[index] = round(time.perf_counter() - t0, 2)
            failures.append(CellFailure(index, cell.source, f"KernelError: {e}"))
            break
        seconds[index] = run.seconds
        if run.ok or "raises-exception" in cell.metadata.get("tags", []):
            continue
        error = f"{run.error['ename']}: {run.error['evalue']}"
        failures.append(CellFailure(index, cell.source, error, run.error["traceback"]))
        if not keep_going:
            break
    return seconds, failures


def _output(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The iopub message as an nbformat output dict (None for messages that are not outputs)."""
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if kind in ("display_data", "execute_result"):
        return {"output_type": kind, "data": content.get("data", {})}
    if kind == "error":
        return {"output_type": "error", **{k: content.get(k) for k in ("ename", "evalue", "traceback")}}
    return None


class Kernel:
    """A fresh ``python3`` kernel with ``env`` added to this process's environment, started in ``cwd``."""

    def __init__(
        self, env: dict[str, str] | None = None, cwd: str | Path = ".", startup_timeout: float = 120
    ):
        self.env = {**os.environ, **(env or {})}
        self.env.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
        self.cwd, self.startup_timeout = str(cwd), startup_timeout
        self.km: Any = None
        self.kc: Any = None

    def __enter__(self) -> Kernel:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=self.env, cwd=self.cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None and self.km.has_kernel:
            self.km.shutdown_kernel(now=True)

    def execute(self, source: str, timeout: float = 600) -> CellRun:
        """Run ``source``; return once the kernel is idle again and its reply is read.

        Raises ``KernelError`` when the kernel dies, or when the cell runs longer than ``timeout``
        seconds (the kernel is interrupted first, so it can take the next cell)."""
        t0 = time.perf_counter()
        msg_id = self.kc.execute(source, store_history=True, allow_stdin=False, stop_on_error=False)
        try:
            outputs, reply = self._wait(msg_id, t0 + timeout)
        except TimeoutError:
            self.km.interrupt_kernel()
            try:  # let the interrupted cell finish, so its messages do not reach the next one
                self._wait(msg_id, time.perf_counter() + INTERRUPT_GRACE_S)
            except TimeoutError:
                pass
            raise KernelError(
                f"the cell ran longer than its timeout of {timeout:.0f} s and was interrupted"
            ) from None
        run = CellRun(round(time.perf_counter() - t0, 2), outputs)
        if reply["status"] != "ok":
            run.error = {
                "ename": reply.get("ename", reply["status"]),
                "evalue": reply.get("evalue", ""),
                "traceback": reply.get("traceback", []),
            }
        return run

    def _wait(self, msg_id: str, deadline: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The outputs of request ``msg_id`` until the kernel is idle, then its reply's content."""
        outputs: list[dict[str, Any]] = []
        idle = False
        while not idle:
            msg = self._next(self.kc.get_iopub_msg, deadline)
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                idle = msg["content"]["execution_state"] == "idle"
            elif (out := _output(msg)) is not None:
                outputs.append(out)
        while True:
            reply = self._next(self.kc.get_shell_msg, deadline)
            if reply is not None and reply["parent_header"].get("msg_id") == msg_id:
                return outputs, reply["content"]

    def _next(self, get: Any, deadline: float) -> dict[str, Any] | None:
        """One message from ``get`` within ``POLL_S``, or None; checks the kernel and the deadline."""
        try:
            return get(timeout=POLL_S)
        except queue.Empty:
            pass
        if not self.km.is_alive():
            raise KernelError("the kernel died (out of memory? see the kernel's stderr above)")
        if time.perf_counter() > deadline:
            raise TimeoutError
        return None
