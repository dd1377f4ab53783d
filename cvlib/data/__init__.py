"""cvlib.data."""
