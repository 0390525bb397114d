"""The pipeline on s3://: pipeline root, data and serving dir in a local S3 server (moto).

moto's server mode stands in for MinIO on 127.0.0.1; the endpoint and keys reach TensorFlow
(tensorflow-io), Beam (apache-beam[aws]) and boto3 through the environment only. The pipeline
runs in a subprocess (`python -m pipeline run`), as a user runs it, and is judged by what it
leaves in the bucket: a pushed model that loads from s3:// and answers serving_default, and no
zero-byte directory markers. The entrypoint's marker clean-up runs against the same server.
"""

import json
import os
import socket
import subprocess
import sys
import time

import kfp_driver
import pytest
from conftest import write_digits_subset

BUCKET = "siamese-test"
ARGS = ["--image-size", "16", "--epochs", "2", "--min-training-steps", "0"]
ARGS += ["--identities-per-batch", "10"]
ARGS += ["--images-per-identity", "4", "--lower-bound", "0.2", "--report-examples", "80"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with one bucket; the environment the pods would get."""
    import boto3

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "S3_ENDPOINT": f"127.0.0.1:{port}",
        "S3_USE_HTTPS": "0",
        "S3_VERIFY_SSL": "0",
    }
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        for _ in range(100):
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # noqa: BLE001 (not up yet)
                if server.poll() is not None:
                    raise RuntimeError("moto server exited") from None
                time.sleep(0.2)
        yield env, client
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def upload(client, directory: str, prefix: str) -> None:
    for name in os.listdir(directory):
        client.upload_file(os.path.join(directory, name), BUCKET, f"{prefix}/{name}")


def keys(client, prefix: str) -> dict[str, int]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


def run_python(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **kfp_driver.image_env(), **env}
    return subprocess.run(
        [sys.executable, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=1200
    )


@pytest.fixture(scope="module")
def s3_run(s3_env, tmp_path_factory):
    env, client = s3_env
    local = tmp_path_factory.mktemp("s3-run")
    data = write_digits_subset(str(local / "digits"), train=16, eval=8)
    upload(client, data, "datasets/digits")
    output_dir = local / "output"  # ML Metadata (SQLite) and summary.json stay local.
    argv = ["-m", "pipeline", "run", "--data", f"s3://{BUCKET}/datasets/digits"]
    argv += ["--pipeline-root", f"s3://{BUCKET}/root", "--serving-dir", f"s3://{BUCKET}/serving"]
    argv += ["--output-dir", str(output_dir), *ARGS]
    process = run_python(argv, env, local)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-6000:]
    with open(output_dir / "summary.json") as f:
        return env, client, local, json.load(f)


def test_entrypoint_deletes_zero_byte_directory_markers_only(s3_env, monkeypatch):
    from pipeline import container_entrypoint

    env, client = s3_env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client.put_object(Bucket=BUCKET, Key="markers/model/Format-Serving/", Body=b"")
    client.put_object(Bucket=BUCKET, Key="markers/model/Format-Serving/saved_model.pb", Body=b"x")
    client.put_object(Bucket=BUCKET, Key="markers/other/", Body=b"")
    removed = container_entrypoint.remove_directory_markers(f"s3://{BUCKET}/markers/model")
    assert removed == [f"s3://{BUCKET}/markers/model/Format-Serving/"]
    assert set(keys(client, "markers/")) == {
        "markers/model/Format-Serving/saved_model.pb",
        "markers/other/",  # Not an output of this step.
    }


@pytest.mark.e2e
def test_pipeline_on_s3_pushes_a_blessed_model_into_the_bucket(s3_run):
    _, client, _, summary = s3_run
    assert summary["blessed"] is True
    assert set(summary["components"].values()) == {"COMPLETE"}
    pushed = summary["pushed_model_dir"]
    assert pushed.startswith(f"s3://{BUCKET}/serving/")
    version = pushed.rstrip("/").rsplit("/", 1)[1]
    objects = keys(client, f"serving/{version}/")
    assert objects[f"serving/{version}/saved_model.pb"] > 0
    assert any(k.startswith(f"serving/{version}/variables/") for k in objects)
    assert summary["artifacts"]["model"].startswith(f"s3://{BUCKET}/root/")
    # Nothing a KFP launcher would download as a file where a folder belongs.
    written = {**keys(client, "root/"), **keys(client, "serving/")}
    assert not [k for k, size in written.items() if k.endswith("/") and size == 0]


@pytest.mark.e2e
def test_pushed_model_loads_from_s3_and_answers_serving_default(s3_run):
    env, _, local, summary = s3_run
    script = (
        "import os, sys, tensorflow as tf\n"
        "from pipeline import filesystems\n"
        "from components.example_gen import readers\n"
        "filesystems.register()\n"
        "model = tf.saved_model.load(sys.argv[1])\n"
        "png = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()\n"
        "example = readers.make_example(png, 'x').SerializeToString()\n"
        "out = model.signatures['serving_default'](examples=tf.constant([example]))\n"
        "print('EMBEDDING', out['embedding'].shape[1], flush=True)\n"
        "os._exit(0)\n"
    )
    process = run_python(["-c", script, summary["pushed_model_dir"]], env, local)
    assert process.returncode == 0, process.stderr[-4000:]
    assert "EMBEDDING 64" in process.stdout
