"""Segmentation models (and pix2pix, a generation model built from the same U-Net); importing this
package registers them."""

from cvlib.models.segmentation import deeplab, fcn, pix2pix, segnet, unet  # noqa: F401
