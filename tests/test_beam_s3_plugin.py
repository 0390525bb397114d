"""pipeline.beam_s3_plugin in real SDK worker processes: s3:// works there, and they exit 0.

A one-step Beam pipeline on the DirectRunner in multi_processing mode (one subprocess worker,
`python -m apache_beam.runners.worker.sdk_worker_main`) calls tf.io.gfile.exists on an object in
a local S3 server (moto). The main process never registers s3://, so what the worker knows it
got from the plugin. Without the plugin the same call fails in the worker ("File system scheme
's3' not implemented"); with it, it answers True and the worker ends with status 0 instead of
tensorflow-io's abort at exit (134, which Beam reports as "Worker subprocess exited with return
code 134" and otherwise ignores).
"""

import subprocess
import sys

import pytest
from moto_s3 import BUCKET, Moto, full_env

PIPELINE = """
import sys
import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

path, output, *plugin = sys.argv[1:]
options = PipelineOptions(
    ["--direct_running_mode=multi_processing", "--direct_num_workers=1", *plugin]
)
with beam.Pipeline(options=options) as p:
    _ = (
        p
        | beam.Create([path])
        | beam.Map(tf.io.gfile.exists)
        | beam.Map(str)
        | beam.io.WriteToText(output, shard_name_template="")
    )
print("DONE", flush=True)
"""


@pytest.fixture(scope="module")
def moto_env(tmp_path_factory):
    moto = Moto(tmp_path_factory.mktemp("moto") / "server.log").start()
    moto.client().put_object(Bucket=BUCKET, Key="plugin/object", Body=b"x")
    try:
        yield moto.env()
    finally:
        moto.stop()


def run_pipeline(env, output, *plugin) -> subprocess.CompletedProcess:
    path = f"s3://{BUCKET}/plugin/object"
    return subprocess.run(
        [sys.executable, "-c", PIPELINE, path, str(output), *plugin],
        env=full_env(env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_workers_open_s3_with_the_plugin_and_exit_cleanly(moto_env, tmp_path):
    output = tmp_path / "exists.txt"
    process = run_pipeline(moto_env, output, "--beam_plugins=pipeline.beam_s3_plugin")
    assert process.returncode == 0, process.stderr[-4000:]
    assert "DONE" in process.stdout
    assert output.read_text().split() == ["True"]
    assert "Worker subprocess exited with return code" not in process.stderr
    assert "pure virtual method called" not in process.stderr


def test_without_the_plugin_workers_have_no_s3(moto_env, tmp_path):
    process = run_pipeline(moto_env, tmp_path / "exists.txt")
    assert process.returncode != 0
    assert "File system scheme 's3' not implemented" in process.stderr
