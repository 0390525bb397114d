"""The Pusher puts a version into the serving dir whole or not at all (components.serving.pusher).

Real files throughout: a blessed model is pushed complete and an unblessed one not at all; a
push SIGKILLed half-way (in a subprocess, as TFX runs an executor) leaves no numeric version,
only its `.partial-*` sibling, which a later push removes once stale; the object-store branch
writes saved_model.pb last.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts, standard_component_specs

from components.serving import pusher

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = "Format-Serving"  # Where a Model artifact holds its SavedModel.
MB = 1 << 20


def write_model(uri: str, shards: int = 2, shard_bytes: int = 1000) -> str:
    """A SavedModel-shaped folder in a Model artifact at `uri`; returns the folder."""
    model = os.path.join(uri, SERVING)
    os.makedirs(os.path.join(model, "variables"))
    os.makedirs(os.path.join(model, "assets.extra"))
    chunk = os.urandom(min(shard_bytes, MB))
    files = {pusher.SAVED_MODEL: 5000, "fingerprint.pb": 50, "variables/variables.index": 900}
    files["assets.extra/calibration.json"] = 300
    files.update(
        {f"variables/variables.data-{i:05d}-of-{shards:05d}": shard_bytes for i in range(shards)}
    )
    for name, size in files.items():
        with open(os.path.join(model, name), "wb") as f:
            for start in range(0, size, len(chunk)):
                f.write(chunk[: size - start])
    return model


def sizes(folder: str) -> dict[str, int]:
    """Every file under `folder`, relative, with its size."""
    found = {}
    for parent, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(parent, name)
            found[os.path.relpath(path, folder)] = os.path.getsize(path)
    return found


def run_push(model_uri: str, serving_dir: str, pushed_uri: str, blessed: bool = True):
    """The Pusher's executor on artifacts as TFX hands them over; returns the PushedModel."""
    model = standard_artifacts.Model()
    model.uri = model_uri
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = pushed_uri
    destination = {"filesystem": {"base_directory": serving_dir}}
    pusher.Executor().Do(
        {
            standard_component_specs.MODEL_KEY: [model],
            standard_component_specs.MODEL_BLESSING_KEY: [blessing],
        },
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(destination)},
    )
    return pushed


def listing(serving_dir: str) -> tuple[list[str], list[str]]:
    """(numeric versions, .partial-* siblings) under the serving dir."""
    names = sorted(os.listdir(serving_dir))
    return [n for n in names if n.isdigit()], [n for n in names if n.startswith(".partial-")]


@pytest.fixture
def work(tmp_path):
    """tmp_path, emptied afterwards (pytest keeps the last runs' folders, and these are big)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_blessed_model_is_pushed_whole_and_an_unblessed_one_not_at_all(work):
    model = write_model(str(work / "model"))
    serving = str(work / "serving")
    pushed = run_push(str(work / "model"), serving, str(work / "pushed"))
    versions, partials = listing(serving)
    assert len(versions) == 1 and partials == []
    assert sizes(os.path.join(serving, versions[0])) == sizes(model)
    assert sizes(pushed.uri) == sizes(model)  # The PushedModel artifact's own copy.
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_version") == versions[0]
    assert pushed.get_string_custom_property("pushed_destination") == (
        os.path.join(serving, versions[0])
    )

    other = str(work / "other-serving")
    unblessed = run_push(str(work / "model"), other, str(work / "unpushed"), blessed=False)
    assert unblessed.get_int_custom_property("pushed") == 0
    assert not os.path.exists(other)


def test_an_existing_version_directory_is_left_alone(work):
    write_model(str(work / "model"))
    serving = work / "serving"
    now = int(time.time())
    taken = [str(now + k) for k in range(5)]  # Whichever second the push lands in.
    for name in taken:
        (serving / name).mkdir(parents=True)
    pushed = run_push(str(work / "model"), str(serving), str(work / "pushed"))
    assert pushed.get_string_custom_property("pushed_version") in taken
    assert listing(str(serving)) == (taken, [])
    assert all(os.listdir(serving / name) == [] for name in taken)


def test_a_push_killed_half_way_leaves_no_version_and_its_leftover_is_removed_when_stale(work):
    # 200 MB in 100 shards: a copy of ~0.1 s at page-cache speed, found within a millisecond.
    model = write_model(str(work / "model"), shards=100, shard_bytes=2 * MB)
    total = sum(sizes(model).values())
    serving = str(work / "serving")
    child = (
        "import os, sys\n"
        "from components.serving.pusher_test import run_push\n"
        "os.nice(10)\n"  # The copy slower still on a busy machine, never faster.
        "run_push(*sys.argv[1:4])\n"
    )
    args = [sys.executable, "-c", child, str(work / "model"), serving, str(work / "pushed")]
    env = {**os.environ, "PYTHONPATH": REPO}
    log = work / "child.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(args, cwd=REPO, env=env, stderr=stderr)
    try:
        deadline = time.monotonic() + 180
        copied = 0
        while not copied:
            assert process.poll() is None, f"ended before the kill: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no .partial-* sibling appeared"
            partials = listing(serving)[1] if os.path.isdir(serving) else []
            if not partials:
                time.sleep(0.001)
                continue
            try:
                copied = sum(sizes(os.path.join(serving, partials[0])).values())
            except FileNotFoundError:  # A file renamed away under the walk: look again.
                continue
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()

    versions, partials = listing(serving)
    assert versions == [], "TF Serving would load a half-written version"
    assert len(partials) == 1
    partial = os.path.join(serving, partials[0])
    assert 0 < sum(sizes(partial).values()) < total
    assert pusher.remove_stale_partials(serving) == []  # Fresh: perhaps a live push.

    an_hour_ago = time.time() - pusher.STALE_AFTER_S - 60
    for parent, folders, files in os.walk(partial):
        for name in folders + files:
            os.utime(os.path.join(parent, name), (an_hour_ago, an_hour_ago))
    os.utime(partial, (an_hour_ago, an_hour_ago))
    run_push(str(work / "model"), serving, str(work / "pushed"))
    versions, partials = listing(serving)
    assert len(versions) == 1 and partials == []
    assert sizes(os.path.join(serving, versions[0])) == sizes(model)


def test_the_object_store_branch_writes_saved_model_pb_last(work):
    model = write_model(str(work / "model"), shards=3)
    order = []

    def recorded_copy(source, target, overwrite=False):
        order.append(os.path.relpath(target, work / "bucket" / "7"))
        tf.io.gfile.copy(source, target, overwrite=overwrite)

    pusher.push_object_store(model, str(work / "bucket" / "7"), copy_file=recorded_copy)
    assert order[-1] == pusher.SAVED_MODEL
    assert sorted(order) == sorted(sizes(model))
    assert sizes(str(work / "bucket" / "7")) == sizes(model)
    assert pusher.is_object_store("s3://bucket/serving") and pusher.is_object_store("gs://b/s")
    assert not pusher.is_object_store(str(work))
