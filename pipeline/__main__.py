"""`python -m pipeline` is the same as the `siamese-tfx` console script."""

from pipeline.cli import console_script

if __name__ == "__main__":
    console_script()
