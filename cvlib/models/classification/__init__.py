"""classification models; importing this package registers them."""
