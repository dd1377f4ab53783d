"""cvlib.widgets."""
