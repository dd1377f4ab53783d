"""cvlib: the shared PyTorch library behind the computer-vision course.

Subpackages: ``data``, ``models`` (classification, segmentation, detection), ``ops``,
``train``, ``metrics``, ``viz``, ``widgets``; plus ``knn`` for the k-NN baseline.
"""

from cvlib.runtime import fast_dev_run, get_device, is_small, pick, run_info, run_on, seed_everything, size

__version__ = "0.1.0"

__all__ = [
    "fast_dev_run",
    "get_device",
    "is_small",
    "pick",
    "run_info",
    "run_on",
    "seed_everything",
    "size",
    "__version__",
]
