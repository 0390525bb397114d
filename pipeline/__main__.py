"""`python -m pipeline` is the same as the `siamese-tfx` console script, exiting at once.

TensorFlow with tensorflow-io (s3://) can abort at interpreter shutdown ("pure virtual method
called") after the work is done; os._exit after flushing keeps the command's exit status.
"""

import logging
import os
import sys

from pipeline.cli import main

if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
