"""A Beam plugin for SDK worker processes: s3:// registered before any work, and a clean exit.

Passed as `--beam_plugins=pipeline.beam_s3_plugin` (KubeflowTarget.beam_args adds it when a
path is s3://). Beam's SDK worker, `python -m apache_beam.runners.worker.sdk_worker_main`,
imports every --beam_plugins module before it takes work (sdk_worker_main.py,
create_harness -> _import_beam_plugins). That is the process the DirectRunner starts per worker
in multi_processing mode (fn_api_runner/fn_runner.py, SubprocessSDKEnvironment) and the one
Flink, Spark and Dataflow run in their SDK containers. In such a process TensorFlow knows s3://
only if something imports tensorflow_io, which TFX's own modules do only by chance
(tensorflow_transform/__init__.py, tensorflow_model_analysis/utils/model_util.py): importing
this module calls filesystems.register(), from the environment the worker inherited.

tensorflow-io 0.37.1 aborts the process at exit once its S3 file system has been used ("pure
virtual method called", status 134), after every atexit handler has run (tensorflow/io issues
1912 and 2039). Inside an SDK worker, this module's exit handler therefore runs the other
handlers, flushes, and ends the process with os._exit: 0, or 1 when the worker ended on an
uncaught exception. It runs only after the harness returned, all its bundles done and
reported; what it skips is interpreter teardown.
"""

import atexit
import logging
import os
import sys

from pipeline import filesystems

WORKER_MODULE = "apache_beam.runners.worker.sdk_worker_main"
_state = {"failed": False, "exiting": False}


def in_sdk_worker() -> bool:
    """True in a process started as `python -m apache_beam.runners.worker.sdk_worker_main`."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == WORKER_MODULE


def _noting_failure(hook):
    def excepthook(kind, value, traceback):
        _state["failed"] = True
        hook(kind, value, traceback)

    return excepthook


def _exit_now() -> None:
    """The last of the exit: the other atexit handlers, then os._exit, before teardown."""
    if _state["exiting"]:
        return  # Called again by _run_exitfuncs below.
    _state["exiting"] = True
    atexit._run_exitfuncs()  # Those registered before this module, logging.shutdown among them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if _state["failed"] else 0)


def install() -> None:
    filesystems.register()
    if in_sdk_worker():
        sys.excepthook = _noting_failure(sys.excepthook)
        atexit.register(_exit_now)
    logging.getLogger(__name__).info("s3:// registered in process %d", os.getpid())


install()
