"""Pusher: TFX's Pusher, except that a pushed version appears in the serving dir whole or not
at all.

The rule. On a local file system the model is copied into a non-numeric sibling,
`<base>/.partial-<version>-<random>`, synced, then renamed to `<base>/<version>` (one
`os.rename` on one file system: atomic). Leftover `.partial-*` siblings of killed pushes are
removed by a later push once nothing in them has changed for an hour (STALE_AFTER_S): a live
push writes its files continuously, so an hour without a write can only be a dead one, even
over NFS with minutes of clock skew, while a leftover costs only disk until then. On an object
store (`"://" in path`: s3://, gs://) a rename is a copy, so the files are written straight into
`<base>/<version>/`, every file but `saved_model.pb` first and `saved_model.pb` last, as TFX
does. Everything else is TFX's: the blessing check, the `pushed`, `pushed_destination` and
`pushed_version` custom properties, the copy to the PushedModel artifact's uri, and no copy when
the version directory exists already.

What the readers do (tensorflow/serving, tag 2.16.1, commit
0d726954f36a2b6c6bfb60a4caec311f2b3e3101; paths under tensorflow_serving/):
- FileSystemStoragePathSource lists `<base>`'s children and keeps those whose whole name parses
  as an int64 (`safe_strto64`), skipping the rest without error, `.partial-*` included; it does
  not look inside, nor wait for `saved_model.pb`
  (sources/storage_path/file_system_storage_path_source.cc:82-83, 114-131; the latest policy,
  one version by default, aspires the highest number: 139-159).
- Loading a version without `saved_model.pb` fails with NotFound ("should have a file called
  `saved_model.pb`", session_bundle/oss/session_bundle_util.cc:67-78); with `saved_model.pb`
  but a truncated checkpoint the restore op fails; with no `variables/variables.index` at all
  TensorFlow's RunRestore (tensorflow/cc/saved_model/loader.cc) logs "no variables; no
  checkpoints were restored" and the load SUCCEEDS with uninitialised variables.
- A failed load is retried max_num_load_retries = 5 times, load_retry_interval_micros = 60 s
  apart (model_servers/main.cc:162-171, server_core.h:120-129, core/loader_harness.cc:79-83,
  util/retrier.cc:26-52), then the version stays in kError (loader_harness.cc:99-101): it is
  not tried again even once complete, since enable_reload_servables_with_error is false
  (server_core.h:168, core/aspired_versions_manager.cc:320-334) and main.cc has no flag for it.
- The model server uses the AvailabilityPreservingPolicy (model_servers/server.cc:310): the
  previous version is unloaded only once an aspired version is ready, or when it is not the
  only one loaded (core/availability_preserving_policy.cc:65-75), so it keeps serving while the
  new one fails. A server that starts (or restarts) during a push has no previous version: it
  aspires the highest number only, and serves nothing until that loads.
- KServe's storage initializer (kserve/kserve at tag v0.15.2, commit
  d623ea29e4a7312e509829f9104209cd6f820268, python/kserve/kserve/storage/storage.py:241-279)
  lists every object under `s3://.../serving/` once, at pod start, and downloads each into
  /mnt/models, with no check of completeness or of version names: a version being pushed is
  copied as far as it got, and TF Serving in that pod then sees a static incomplete highest
  version (no retry can complete it).

Hence, here: locally, TF Serving, KServe (from a volume) and the served baseline
(components.baseline.served_baseline.newest_version) see `<version>` only when complete. On an
object store, each object appears whole, so writing `saved_model.pb` last keeps "it has
`saved_model.pb`, so it is complete": a TF Serving that is up keeps serving the previous version
while it retries, and loads the new one if its last file lands within the ~5 minutes of retries
(else only after a restart or a newer push); a pod that starts mid-push gets a copy without
`saved_model.pb` and serves nothing until restarted after the push; the served baseline skips
the version until `saved_model.pb` is there.
"""

import logging
import os
import secrets
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf
from tfx.components.pusher import component as tfx_pusher
from tfx.components.pusher import executor as tfx_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.baseline.served_baseline import SAVED_MODEL
from components.serving import export, gallery_ledger

PARTIAL_PREFIX = ".partial-"  # Not a number: TF Serving and newest_version skip it.
STALE_AFTER_S = 3600  # A partial untouched this long belongs to a killed push (see above).


def is_object_store(path: str) -> bool:
    """s3://, gs:// and the like: no atomic rename there."""
    return "://" in path


def model_files(source: str) -> list[str]:
    """Every file under `source`, relative to it, the top-level saved_model.pb last."""
    source = source.rstrip("/")
    names = []
    for folder, _, files in tf.io.gfile.walk(source):
        relative = folder[len(source) :].strip("/")
        names += [f"{relative}/{name}" if relative else name for name in files]
    return sorted(names, key=lambda name: name == SAVED_MODEL)  # Stable: only moves it last.


def copy_model(source: str, destination: str, copy_file=tf.io.gfile.copy) -> None:
    """Copies `source` into `destination` file by file, saved_model.pb last.

    No directories are made on an object store (they would be zero-byte marker objects).
    """
    for name in model_files(source):
        target = f"{destination.rstrip('/')}/{name}"
        if not is_object_store(target):
            tf.io.gfile.makedirs(os.path.dirname(target))
        copy_file(f"{source.rstrip('/')}/{name}", target, overwrite=True)


def newest_mtime(path: str) -> float:
    """The latest modification time of `path` or anything beneath it."""
    newest = os.lstat(path).st_mtime
    for folder, folders, files in os.walk(path):
        for name in folders + files:
            newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest


def remove_stale_partials(base: str, max_age_s: float = STALE_AFTER_S) -> list[str]:
    """Removes `.partial-*` siblings under `base` untouched for `max_age_s`; returns them."""
    removed = []
    now = time.time()
    for entry in os.scandir(base):
        if entry.name.startswith(PARTIAL_PREFIX) and entry.is_dir(follow_symlinks=False):
            try:
                stale = now - newest_mtime(entry.path) > max_age_s
            except FileNotFoundError:  # Renamed or removed by its own push meanwhile.
                continue
            if stale:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(path: str) -> None:
    """fsync every file and folder under `path`, so a crash after the rename finds data."""
    for folder, _, files in os.walk(path):
        for name in [*files, "."]:
            _fsync(os.path.join(folder, name))


def push_local(model_path: str, serving_path: str) -> bool:
    """Copies into a `.partial-*` sibling, then renames it to `serving_path`.

    Returns False (and leaves nothing behind) when `serving_path` appeared meanwhile.
    """
    base, version = os.path.split(serving_path.rstrip("/"))
    os.makedirs(base, exist_ok=True)
    for path in remove_stale_partials(base):
        logging.info("Pusher: removed %s, left by a killed push", path)
    partial = os.path.join(base, f"{PARTIAL_PREFIX}{version}-{secrets.token_hex(4)}")
    os.mkdir(partial)  # The umask's permissions, unlike tempfile.mkdtemp's 0700.
    try:
        copy_model(model_path, partial)
        _sync_tree(partial)
        try:
            os.rename(partial, serving_path)
        except OSError:
            if not os.path.isdir(serving_path):
                raise
            shutil.rmtree(partial, ignore_errors=True)
            return False
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _fsync(base)  # The rename itself.
    return True


def push_object_store(model_path: str, serving_path: str, copy_file=tf.io.gfile.copy) -> bool:
    """Writes every file but saved_model.pb, then saved_model.pb (objects appear whole)."""
    copy_model(model_path, serving_path, copy_file)
    return True


def push(model_path: str, serving_path: str) -> bool:
    """The version whole or not at all; False when another push made it meanwhile."""
    if is_object_store(serving_path):
        return push_object_store(model_path, serving_path)
    return push_local(model_path, serving_path)


def without_forgotten(model_path: str, base: str, scratch: str) -> str:
    """model_path, or a copy in `scratch` without the people forgotten in `base` since
    ServingModel built its gallery (a forget during the run must not be undone by its push)."""
    keys = gallery_ledger.forgotten(base)
    entries = gallery_ledger.version_gallery(model_path) if keys else None
    if entries is None:
        return model_path
    embeddings, names = entries
    keep = np.array([gallery_ledger.identity_key(n) not in keys for n in names], dtype=bool)
    if keep.all():
        return model_path
    held = int((~keep).sum())
    calibration = export.read_calibration(model_path) or {}
    change = {"change": "forget", "at": gallery_ledger.now(), "entries": held}
    calibration = {
        **calibration,
        "gallery_size": int(keep.sum()),
        "gallery_identities": int(np.unique(names[keep]).size),
        "gallery_changes": [*calibration.get("gallery_changes", []), change],
    }
    copy = os.path.join(scratch, "model")
    export.export_with_gallery(model_path, copy, (embeddings[keep], names[keep]), calibration)
    logging.info("Pusher: %d gallery entries of people forgotten during the run left out", held)
    return copy


class Executor(tfx_executor.Executor):
    """TFX's Pusher executor with `push` for the copy into the serving dir."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX API)
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        kind = destination.WhichOneof("destination")
        if kind != "filesystem":
            raise NotImplementedError(f"Invalid push destination {kind}")
        versioning = destination.filesystem.versioning
        if versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"Invalid Versioning {versioning}")
        base = destination.filesystem.base_directory
        with tempfile.TemporaryDirectory() as scratch:
            model_path = without_forgotten(model_path, base, scratch)
            self._push(model_path, base, model_push)

    def _push(self, model_path: str, base: str, model_push) -> None:
        model_version = str(int(time.time()))
        serving_path = os.path.join(base, model_version)
        if tf.io.gfile.exists(serving_path) or not push(model_path, serving_path):
            logging.info("Pusher: %s exists already, skipping this push", serving_path)
        else:
            logging.info("Pusher: model written to serving path %s", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)  # The PushedModel artifact, as TFX's.
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=model_version)


class Pusher(tfx_pusher.Pusher):
    """TFX's Pusher component (same inputs, outputs and id) with the whole-version Executor."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
