"""Datasets: bundled (digits), generated (shapes scenes) and real (MNIST, CIFAR-10, Oxford-IIIT Pet,
ISBI-2012, Pascal VOC) with checksummed, atomic downloads; plus batched on-device transforms.

Submodules: ``digits``, ``shapes``, ``mnist``, ``cifar``, ``pets``, ``isbi``, ``voc``, ``transforms``.
"""

from cvlib.data import transforms
from cvlib.data._download import cache_dir, download_url, extract_archive
from cvlib.data.cifar import load_cifar10
from cvlib.data.digits import load_digits, train_test_split
from cvlib.data.isbi import load_isbi2012
from cvlib.data.mnist import load_fashion_mnist, load_mnist
from cvlib.data.pets import OxfordIIITPet
from cvlib.data.shapes import ShapesConfig, generate_scenes
from cvlib.data.voc import VOCDetection, load_voc2007, parse_voc_xml

__all__ = [
    "cache_dir",
    "download_url",
    "extract_archive",
    "load_digits",
    "train_test_split",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "OxfordIIITPet",
    "load_isbi2012",
    "VOCDetection",
    "load_voc2007",
    "parse_voc_xml",
    "ShapesConfig",
    "generate_scenes",
    "transforms",
]
