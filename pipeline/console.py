"""The console of a local run: progress lines on stdout, library logging into DIR/logs/run.log.

Quiet (default): Python logging (absl, TFX, TFMA, Beam, TensorFlow's Python side) and warnings
go to the log file, and file descriptor 2 points at it too, so TensorFlow's C++ logging and
anything else written to stderr lands there as well. The console keeps stdout: a line when a
component starts ("Transform started ...", shown at once), completed when it ends ("... done in
12.3 s (count)"), or followed by a "Transform done in ..." line when something was printed in
between (the Trainer's epoch lines); then the final summary. Verbose: the logging also shows
on stderr, as before. Component starts and ends come from LocalDagRunner's own absl INFO
records; as absl raises its logger to WARNING when something parses absl flags mid-run (it
happens during Transform), the `absl` logger is held at INFO for the run.

`with_temporary_log` is the same console for a short command (`predict`, `gallery`): the log is
a temporary file, removed unless something unexpected failed, and then named in the error line.
"""

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."
_CACHED = "A cached execution %d is used."
_EPOCH_PREFIX = "epoch "


class Progress(logging.Handler):
    """Turns LocalDagRunner's component records into console lines; remembers the running one."""

    def __init__(self, count: Callable[[str], str] | None = None, stream=None):
        super().__init__(logging.INFO)
        self.stream = stream  # None: sys.stdout at the time of writing.
        self.open_line = False  # A start line waits for its end on the same line.
        self.count = count  # component id -> a count such as '300 examples'
        self.component: str | None = None  # The component running now (or that failed).
        self._started = 0.0
        self._cached = False
        self.epochs = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _RUNNING:
            self.component, self._started, self._cached = record.args[0], time.monotonic(), False
            self.epochs = 0
            self.close_line()
            self._write(f"{self.component} started ...")
            self.open_line = True
        elif record.msg == _CACHED:
            self._cached = True
        elif record.msg == _FINISHED and self.component == record.args[0]:
            seconds = time.monotonic() - self._started
            detail = "cached" if self._cached else self._detail(self.component)
            done = f"done in {seconds:.1f} s" + (f" ({detail})" if detail else "")
            self._write((f" {done}" if self.open_line else f"{self.component} {done}") + "\n")
            self.open_line = False
            self.component = None

    def close_line(self) -> None:
        """Ends a waiting start line, before anything else is printed."""
        if self.open_line:
            self.open_line = False
            self._write("\n")

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    def _detail(self, component: str) -> str:
        if self.epochs:
            return f"{self.epochs} epochs run"
        try:
            return self.count(component) if self.count else ""
        except Exception:  # A count is a nicety; never fail a run over it.
            logging.getLogger(__name__).exception("no count for %s", component)
            return ""


def _ignore_level(level) -> None:
    del level


class _EpochCounter:
    """Wraps stdout to count the Trainer's epoch lines as they pass through."""

    def __init__(self, stream, progress: Progress):
        self._stream, self._progress = stream, progress

    def write(self, text: str) -> int:
        if text:
            self._progress.close_line()
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
    progress = Progress(count, stream=sys.stdout)
    handlers = [file_handler, progress]
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handlers.append(console)
    root.handlers = handlers
    root.setLevel(logging.INFO)
    absl_logger = logging.getLogger("absl")
    saved_absl_level = absl_logger.level
    absl_logger.setLevel(logging.INFO)
    absl_logger.setLevel = _ignore_level  # Held at INFO until the end of the run.
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
        progress.close_line()
        if saved_fd is not None:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        sys.stdout = saved_stdout
        del absl_logger.setLevel
        absl_logger.setLevel(saved_absl_level)
        logging.captureWarnings(False)
        root.handlers, root.level = saved_handlers, saved_level
        file_handler.close()


def with_temporary_log(command: str, verbose: bool, work: Callable, expected: type, subject: str):
    """work() with the libraries' logging in a temporary log file, removed afterwards.

    An `expected` error (the command's own one-line error) passes through. Anything else is
    logged with its traceback, the log is kept, and it is raised as
    expected("SUBJECT: <type>: <first line> (full log: PATH)").
    """
    if not verbose and "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TF's INFO lines: not even logged
    log_fd, log_path = tempfile.mkstemp(prefix=f"siamese-tfx-{command}-", suffix=".log")
    os.close(log_fd)
    keep_log = False
    try:
        with run_console(log_path, verbose):
            try:
                return work()
            except expected:
                raise
            except Exception as error:  # The traceback goes to the log, one line to stderr.
                from pipeline.cli import describe  # cli imports the commands, which import this

                logging.getLogger("siamese-tfx").error(f"{command} failed", exc_info=error)
                keep_log = True
                raise expected(f"{subject}: {describe(error)} (full log: {log_path})") from None
    finally:
        if not keep_log:
            os.remove(log_path)
