"""Custom TFMA metrics for the stock TFX Evaluator."""
