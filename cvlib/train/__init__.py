"""cvlib.train."""
