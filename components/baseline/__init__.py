"""The Evaluator's baseline: the model TF Serving serves now, found on any orchestrator."""
