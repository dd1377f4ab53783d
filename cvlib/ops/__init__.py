"""cvlib.ops."""
