"""cvlib.viz."""
