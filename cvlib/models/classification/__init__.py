"""Classification model families, one file each; importing this package registers their factories.

Families: ``simple`` (teaching models), ``lenet``, ``alexnet``, ``vgg``, ``googlenet``, ``resnet``,
``resnet_cifar`` (CIFAR ResNets and their plain twins), ``senet``, ``densenet``, ``mobilenet``,
``efficientnet``.
"""

from cvlib.models.classification import (
    alexnet,
    densenet,
    efficientnet,
    googlenet,
    lenet,
    mobilenet,
    resnet,
    resnet_cifar,
    senet,
    simple,
    vgg,
)

__all__ = [
    "alexnet",
    "densenet",
    "efficientnet",
    "googlenet",
    "lenet",
    "mobilenet",
    "resnet",
    "resnet_cifar",
    "senet",
    "simple",
    "vgg",
]
