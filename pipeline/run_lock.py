"""One run per output directory: an advisory lock (fcntl.flock) on DIR/.run.lock.

The kernel drops the lock when the process ends, however it ends, so a killed run never
leaves a stale lock behind. The file holds the pid of the run holding it, for the message.
"""

import contextlib
import fcntl
import os

from pipeline import configs


class OutputDirInUse(RuntimeError):
    """Another run holds the output directory."""


@contextlib.contextmanager
def output_dir_lock(output_dir: str):
    """Holds the lock of `output_dir` for the `with` block; raises OutputDirInUse if taken."""
    os.makedirs(output_dir, exist_ok=True)
    path = configs.lock_path(output_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise OutputDirInUse(
                f"{output_dir} is in use by another run (pid {holder}); wait for it to end, "
                "or pick another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
