"""cvlib.metrics."""
