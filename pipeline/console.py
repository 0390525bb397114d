"""The console of a local run: progress lines on stdout, library logging into DIR/logs/run.log.

Quiet (default): Python logging (absl, TFX, TFMA, Beam, TensorFlow's Python side) and warnings
go to the log file, and file descriptor 2 points at it too, so TensorFlow's C++ logging and
anything else written to stderr lands there as well. The console keeps stdout: one line when a
component starts and one when it ends (with its seconds and a count where it has one), the
Trainer's epoch lines, and the final summary. Verbose: the logging also shows on stderr, as
before. Component starts and ends come from LocalDagRunner's own log records.
"""

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."
_CACHED = "A cached execution %d is used."
_EPOCH_PREFIX = "epoch "


class Progress(logging.Handler):
    """Turns LocalDagRunner's component records into console lines; remembers the running one."""

    def __init__(self, count: Callable[[str], str] | None = None):
        super().__init__(logging.INFO)
        self.count = count  # component id -> a count such as '300 examples'
        self.component: str | None = None  # The component running now (or that failed).
        self._started = 0.0
        self._cached = False
        self.epochs = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _RUNNING:
            self.component, self._started, self._cached = record.args[0], time.monotonic(), False
            self.epochs = 0
            _say(f"{self.component} started")
        elif record.msg == _CACHED:
            self._cached = True
        elif record.msg == _FINISHED and self.component == record.args[0]:
            seconds = time.monotonic() - self._started
            detail = "cached" if self._cached else self._detail(self.component)
            _say(f"{self.component} done in {seconds:.1f} s" + (f" ({detail})" if detail else ""))
            self.component = None

    def _detail(self, component: str) -> str:
        if self.epochs:
            return f"{self.epochs} epochs run"
        try:
            return self.count(component) if self.count else ""
        except Exception:  # A count is a nicety; never fail a run over it.
            logging.getLogger(__name__).exception("no count for %s", component)
            return ""


def _say(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class _EpochCounter:
    """Wraps stdout to count the Trainer's epoch lines as they pass through."""

    def __init__(self, stream, progress: Progress):
        self._stream, self._progress = stream, progress

    def write(self, text: str) -> int:
        if text.startswith(_EPOCH_PREFIX):
            self._progress.epochs += 1
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def run_console(log_path: str, verbose: bool = False, count: Callable[[str], str] | None = None):
    """Routes logging for the `with` block (see module doc); yields the Progress handler."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    progress = Progress(count)
    handlers = [file_handler, progress]
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handlers.append(console)
    root.handlers = handlers
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    saved_stdout = sys.stdout
    sys.stdout = _EpochCounter(saved_stdout, progress)
    saved_fd = None
    if not verbose:
        sys.stderr.flush()
        saved_fd = os.dup(2)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    try:
        yield progress
    finally:
        if saved_fd is not None:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        sys.stdout = saved_stdout
        logging.captureWarnings(False)
        root.handlers, root.level = saved_handlers, saved_level
        file_handler.close()
