"""Datasets: bundled (digits), generated (shapes scenes) and real (MNIST, Fashion-MNIST, CIFAR-10,
Oxford-IIIT Pet, ISBI-2012, Pascal VOC, raccoon) with checksummed, atomic downloads; plus batched
on-device transforms.

Real datasets at ``CVLIB_SIZE=small`` read small real subsets shipped inside the package
(``cvlib/data/bundled/``, original formats, sha256-checked against ``manifest.json``) with the
same loaders as the full sets: ``load_fashion_mnist``, ``load_mnist``, ``load_cifar10``
(``split=``, ``subset=``), ``load_isbi2012``, ``load_raccoon``, ``load_photo``.

Submodules: ``digits``, ``shapes``, ``mnist``, ``cifar``, ``pets``, ``isbi``, ``voc``, ``raccoon``,
``transforms``.
"""

from cvlib.data import transforms
from cvlib.data._bundled import bundled_manifest
from cvlib.data._download import cache_dir, download_url, extract_archive
from cvlib.data.cifar import load_cifar10
from cvlib.data.digits import load_digits, train_test_split
from cvlib.data.isbi import load_isbi2012
from cvlib.data.mnist import load_fashion_mnist, load_mnist
from cvlib.data.pets import OxfordIIITPet
from cvlib.data.raccoon import RACCOON_CLASSES, list_photos, load_photo, load_raccoon
from cvlib.data.shapes import ShapesConfig, generate_scenes
from cvlib.data.voc import VOCDetection, load_voc2007, parse_voc_xml

__all__ = [
    "cache_dir",
    "download_url",
    "extract_archive",
    "bundled_manifest",
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
    "load_raccoon",
    "RACCOON_CLASSES",
    "list_photos",
    "load_photo",
    "ShapesConfig",
    "generate_scenes",
    "transforms",
]
