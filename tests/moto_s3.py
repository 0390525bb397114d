"""A local S3 server (moto, server mode, 127.0.0.1) with one bucket, and what tests do with it.

Shared by tests/test_s3.py (the local runner on s3://), tests/test_kfp_spec_run.py (the compiled
spec on s3://, as open-source KFP runs it) and tests/test_beam_s3_plugin.py. The endpoint and keys
reach TensorFlow (tensorflow-io), Beam (apache-beam[aws]) and boto3 through the environment only
(`Moto.env`), as a pod gets them from its secret.
"""

import json
import os
import socket
import subprocess
import sys
import time

import kfp_driver
from conftest import write_digits_subset

BUCKET = "siamese-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# moto.server, where an object uploaded under a key of the JSON file named first gets that
# LastModified back, as it had on a MinIO that restarts on its own disk. ExampleGen fingerprints
# its input files by mtime (tfx/utils/io_utils.py, generate_fingerprint): re-uploaded with new
# times, the same files are new data to it, and nothing downstream is taken from the cache.
KEEP_LAST_MODIFIED = """
import datetime, json, sys
from moto.s3 import models
from moto.server import main
times = json.load(open(sys.argv.pop(1)))
create = models.FakeKey.__init__
def restored(self, name, *args, **kwargs):
    create(self, name, *args, **kwargs)
    if name in times:
        self.last_modified = datetime.datetime.fromisoformat(times[name])
models.FakeKey.__init__ = restored
main()
"""


class Moto:
    """A moto S3 server on 127.0.0.1 with the bucket. It keeps its objects only while it runs."""

    def __init__(self, log_path, port: int | None = None):
        self.log_path, self.port = log_path, port or free_port()
        self.process: subprocess.Popen | None = None

    def start(self, last_modified: dict[str, str] | None = None) -> "Moto":
        """Starts it (empty); `last_modified`: key -> the time an object uploaded later keeps."""
        server = ["-m", "moto.server"]
        if last_modified is not None:
            with open(times := f"{self.log_path}.times.json", "w") as f:
                json.dump(last_modified, f)
            server = ["-c", KEEP_LAST_MODIFIED, times]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, *server, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for _ in range(100):
            try:
                self.client().create_bucket(Bucket=BUCKET)
                return self
            except Exception:  # noqa: BLE001 (not up yet)
                if self.process.poll() is not None:
                    raise RuntimeError(f"moto server exited, see {self.log_path}") from None
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server not up on port {self.port}, see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self) -> dict:
        """The environment the pods would get."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "S3_ENDPOINT": f"127.0.0.1:{self.port}",
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
        }


def upload(client, directory: str, prefix: str) -> None:
    for name in os.listdir(directory):
        client.upload_file(os.path.join(directory, name), BUCKET, f"{prefix}/{name}")


def upload_digits(client, local) -> None:
    """The tiny digits subset, written under `local`, into the bucket's datasets/digits."""
    upload(client, write_digits_subset(str(local / "digits"), train=16, eval=8), "datasets/digits")


def keys(client, prefix: str) -> dict[str, int]:
    """Every key under `prefix` and its size."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


def full_env(env: dict) -> dict:
    return {**os.environ, **kfp_driver.image_env(), **env}


def run_python(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        env=full_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1200,
    )


# Loads a SavedModel from its s3:// path (argv[1]); prints serving_default's embedding size and
# norm for one image.
# In a subprocess: tensorflow-io can abort at interpreter exit, hence os._exit.
SERVE_ONE = (
    "import os, sys, tensorflow as tf\n"
    "from pipeline import filesystems\n"
    "from components.example_gen import readers\n"
    "filesystems.register()\n"
    "model = tf.saved_model.load(sys.argv[1])\n"
    "png = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()\n"
    "example = readers.make_example(png, 'x').SerializeToString()\n"
    "out = model.signatures['serving_default'](examples=tf.constant([example]))['embedding']\n"
    "print('EMBEDDING', out.shape[1], f'{float(tf.norm(out[0])):.4f}', flush=True)\n"
    "os._exit(0)\n"
)


def markers(client, prefix: str) -> list[str]:
    """Zero-byte `.../` keys under `prefix`: what KFP's launcher would download as files."""
    return [k for k, size in keys(client, prefix).items() if k.endswith("/") and size == 0]
