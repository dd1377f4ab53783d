"""detection models; importing this package registers them."""
