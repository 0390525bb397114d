"""Gates that stop the pipeline on bad data."""
