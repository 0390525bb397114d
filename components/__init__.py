"""Custom TFX components and model code of the siamese embedding pipeline."""
