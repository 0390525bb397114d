"""ServingModel: the serving export (verify, identify, the calibrated threshold, a gallery)."""
