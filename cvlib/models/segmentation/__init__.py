"""segmentation models; importing this package registers them."""
