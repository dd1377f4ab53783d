"""Image-kernel explorer: pick a preset 3x3 kernel (blur, sharpen, Sobel, Laplacian, ...) or type one.

The presets are :data:`cvlib.ops.filters.KERNELS` (Sobel & Feldman 1968 for the edge kernels); the
response is :func:`cvlib.ops.filters.apply_kernel`, i.e. what one channel of a convolution layer
computes (LeCun et al. 1998). ``ipywidgets`` is imported only inside :func:`kernel_explorer`, so
this module imports without it. The book is static: :func:`show_kernel_gallery` (re-exported from
:mod:`cvlib.viz.filters`) draws the same presets as one matplotlib figure.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cvlib._validate import check_tensor
from cvlib.ops.filters import KERNELS, apply_kernel, get_kernel
from cvlib.viz.filters import show_kernel_application, show_kernel_gallery

__all__ = ["KernelExplorer", "kernel_explorer", "show_kernel_gallery"]

CUSTOM = "custom"


class KernelExplorer:
    """The explorer's state and widgets; displaying the object displays its widget.

    Attributes:
        widget: the ``ipywidgets.VBox`` (preset dropdown, 3x3 grid of float inputs, output figure).
        preset: the dropdown (kernel names plus ``"custom"``).
        cells: the 9 ``FloatText`` inputs, row-major.
    """

    def __init__(self, image: Tensor, initial: str = "sobel_x") -> None:
        try:
            import ipywidgets as w
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise RuntimeError("the kernel explorer needs ipywidgets: pip install ipywidgets") from err
        check_tensor(
            image, "image", ndim=(2, 3, 4), dtype="float", finite=True, nonempty=True, shape="[H, W]"
        )
        if not isinstance(initial, str) or initial not in KERNELS:
            raise ValueError(f"initial must be one of {tuple(KERNELS)}, got {initial!r}")
        self.image = image.detach()
        self._syncing = False
        self.preset = w.Dropdown(options=[*KERNELS, CUSTOM], value=initial, description="kernel")
        self.cells = [w.FloatText(value=0.0, step=0.1, layout=w.Layout(width="70px")) for _ in range(9)]
        grid = w.GridBox(self.cells, layout=w.Layout(grid_template_columns="repeat(3, 75px)"))
        self.output = w.Output()
        self.widget = w.VBox([self.preset, grid, self.output])
        self.preset.observe(self._on_preset, names="value")
        for cell in self.cells:
            cell.observe(self._on_cell, names="value")
        self._load(initial)

    @property
    def kernel(self) -> Tensor:
        """The kernel now in the 9 inputs: Tensor[3, 3], float32."""
        return torch.tensor([c.value for c in self.cells], dtype=torch.float32).reshape(3, 3)

    def response(self) -> Tensor:
        """``apply_kernel`` of the (grey) image with the current kernel."""
        grey = self.image.float().mean(0) if self.image.dim() == 3 else self.image.float()
        return apply_kernel(grey, self.kernel)

    def _load(self, name: str) -> None:
        self._syncing = True
        try:
            for cell, v in zip(self.cells, get_kernel(name).flatten().tolist()):
                cell.value = v
        finally:
            self._syncing = False
        self._redraw()

    def _on_preset(self, change: dict[str, Any]) -> None:
        if change["new"] != CUSTOM and not self._syncing:
            self._load(change["new"])

    def _on_cell(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if self.preset.value != CUSTOM and not torch.equal(self.kernel, get_kernel(self.preset.value)):
            self._syncing = True
            try:
                self.preset.value = CUSTOM
            finally:
                self._syncing = False
        self._redraw()

    def _redraw(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:  # no front end to draw into (plain Python, tests)
            return
        fig = show_kernel_application(self.image, self.kernel, name=self.preset.value)
        with self.output:
            self.output.clear_output(wait=True)
            display(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def kernel_explorer(image: Tensor, *, initial: str = "sobel_x") -> KernelExplorer:
    """An interactive explorer of 3x3 kernels applied to ``image``.

    Args:
        image (Tensor[H, W] | Tensor[1, H, W] | Tensor[3, H, W]): in [0, 1]; shown in grey.
        initial: the preset selected first (a name from :data:`cvlib.ops.filters.KERNELS`).

    Returns:
        KernelExplorer: display it (last expression of a cell) to get the widget. Choosing a preset
        fills the 3x3 inputs; editing an input switches the dropdown to ``"custom"``. Both redraw
        image, kernel and response.

    Raises:
        RuntimeError: if ipywidgets is not installed.
    """
    return KernelExplorer(image, initial=initial)
