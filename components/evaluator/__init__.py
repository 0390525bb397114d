"""The Evaluator: embedding metrics (NumPy and TFMA), the blessing gates, their results."""
