"""The pipeline on s3://: pipeline root, data and serving dir in a local S3 server (moto).

moto's server mode stands in for MinIO on 127.0.0.1; the endpoint and keys reach TensorFlow
(tensorflow-io), Beam (apache-beam[aws]) and boto3 through the environment only. The pipeline
runs in a subprocess (`python -m pipeline run`), as a user runs it, and is judged by what it
leaves in the bucket: a pushed model and no zero-byte directory markers. The entrypoint's marker
clean-up runs against the same server. The server and its helpers are tests/moto_s3.py's. That
the pushed model loads from s3:// and answers serving_default, and the compiled spec's steps on
s3:// (as open-source KFP runs them, inputs downloaded as its launcher does), are
tests/test_kfp_spec_run.py's.

The server going away mid-run and coming back (test_a_run_stopped_by_an_s3_outage_...): stopped
when the console shows "Trainer started", the run exits 1 with one line naming the endpoint;
brought back with a snapshot of the bucket, the same command resumes from the cache and ends as
an uninterrupted run does. It stops at the Trainer, not at Transform: Transform lasts long
enough to catch, but once inside Beam its S3 calls are retried for minutes whatever the AWS
settings (450 s measured, below). The Trainer does all its S3 I/O through tensorflow-io.

What retries an S3 error, and for how long. Measured here against moto with the server stopped
(connection refused), tensorflow-io 0.37.1, apache-beam 2.59, botocore 1.44:
- tensorflow-io (every tf.io.gfile call: TFX's own file handling, Transform's graph, the
  Trainer, model loading) sets only timeouts (5 min, kS3TimeoutMsec) and TLS on its client
  (tensorflow/io v0.37.1, tensorflow_io/core/filesystems/s3/s3_filesystem.cc:51, 129-163).
  The AWS SDK for C++ it bundles (1.8.187, WORKSPACE:229-241) therefore retries each request 10
  times, sleeping 0, 50 ms, 100 ms ... 12.8 s (aws/aws-sdk-cpp 1.8.187,
  aws-cpp-sdk-core/include/aws/core/client/DefaultRetryStrategy.h:20,
  source/client/DefaultRetryStrategy.cpp:14-32). A connection failure counts as retryable
  (source/client/AWSClient.cpp, AWSXMLClient::BuildAWSError). So a request survives about 25 s
  of outage: a read with the server away 20 s succeeded after 25.6 s. Reads and uploads go
  through a TransferManager retried 3 more times (s3_filesystem.cc:59-60, 328-339, 453-462):
  an upload outlived a 60 s outage, and fails after 204 s with the server gone. Stat, behind
  exists, isdir, makedirs, listdir and every read, turns any failure except FAILED_PRECONDITION
  into NOT_FOUND (s3_filesystem.cc:663-694). With the server away longer than 25 s, exists()
  says False after 51 s (HEAD, then LIST), makedirs() does nothing and reports success
  (CreateDir, :1036-1050), and a read raises NotFoundError "Object ... does not exist". A
  connection failure has no HTTP code, so its status is UNKNOWN ": curlCode: 7, Couldn't
  connect to server" (:67, :98) and names no endpoint; filesystems.unreachable_endpoint adds it.
- Beam's S3 (boto3): botocore 1.44 defaults to the standard retry mode: 3 attempts, with
  backoff under 50 ms, then under 100 ms, for a connection error (botocore/configprovider.py:157,
  retries/standard.py:36, 344-353, 470-473). The legacy mode's 5 attempts
  (data/_retry.json:93-97) apply only when asked for.
  On top of that, Beam retries list, metadata, ranged reads, copy and delete 7 times, sleeping
  5, 10 ... 320 s, each fuzzed to half or more (apache_beam/utils/retry.py:115, 139, 234-242;
  io/aws/s3io.py:154, 205, 301, 394, 514, 591; io/aws/clients/s3/boto3_client.py:137). A Beam
  read or listing survives 5 to 10 minutes: exists() outlived a 150 s outage, answering after
  262 s. Multipart upload parts are not wrapped: boto3's 3 attempts only.
- So a step survives an outage of about 25 s anywhere. A longer one fails it, slowly: 486 s
  after a stop at the Trainer's start (makedirs, 51 s per output, then the schema "not found";
  TFX's clean-up then raises the curl error), 450 s at Transform's (Beam's retried listing).
  AWS_RETRY_MODE=standard with AWS_MAX_ATTEMPTS=N sets the attempts of both SDKs. The bundled
  C++ SDK reads them too: with N=1, a failing exists() returns at once. It ignores
  AWS_MAX_ATTEMPTS without that mode, and Beam's own retries stay whatever is set. The test
  sets N=1 for the interrupted run, which then fails within a second of the stop.
- The cache survives the restart because the restarted server gives each object back its
  LastModified (KEEP_LAST_MODIFIED). With new times, ExampleGen's input fingerprint changes and
  every step runs again. The resumed run's metrics matched the uninterrupted run's bit for bit
  in two tries of three (the weights too, where compared). In the third, three mean distances
  differed by 6e-10 relative, while all ranking and threshold metrics matched exactly. That is
  run-to-run float noise, not the resume. Most likely it comes from TensorFlow's CPU kernels,
  which are not promised to be deterministic without
  tf.config.experimental.enable_op_determinism; which op was not pinned down. Hence
  pytest.approx.
"""

import datetime
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import TRAINING, UPSTREAM
from moto_s3 import BUCKET, Moto, full_env, keys, markers, run_python, upload_digits

__all__ = ["BUCKET", "Moto", "full_env"]  # Also tests/test_beam_s3_plugin.py's.
ARGS = ["--image-size", "16", "--epochs", "2", "--min-training-steps", "0"]
ARGS += ["--identities-per-batch", "10"]
ARGS += ["--images-per-identity", "4", "--lower-bound", "0.2", "--report-examples", "80"]


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with one bucket; the environment the pods would get."""
    moto = Moto(tmp_path_factory.mktemp("moto") / "server.log").start()
    try:
        yield moto.env(), moto.client()
    finally:
        moto.stop()


def pipeline_argv(output_dir) -> list[str]:
    """`python -m pipeline run` on the bucket's digits, root and serving dir in the bucket."""
    argv = ["-m", "pipeline", "run", "--data", f"s3://{BUCKET}/datasets/digits"]
    argv += ["--pipeline-root", f"s3://{BUCKET}/root", "--serving-dir", f"s3://{BUCKET}/serving"]
    return [*argv, "--output-dir", str(output_dir), *ARGS]


@pytest.fixture(scope="module")
def s3_run(s3_env, tmp_path_factory):
    env, client = s3_env
    local = tmp_path_factory.mktemp("s3-run")
    upload_digits(client, local)
    output_dir = local / "output"  # ML Metadata (SQLite) and summary.json stay local.
    process = run_python(pipeline_argv(output_dir), env, local)
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
    assert not markers(client, "root/") + markers(client, "serving/")


def snapshot(client, directory) -> dict[str, str]:
    """Downloads every object of the bucket into `directory` (as 0, 1, ...); returns each key's
    LastModified (naive UTC, as moto keeps it)."""
    os.makedirs(directory)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    objects = [item for page in pages for item in page.get("Contents", [])]
    for n, item in enumerate(objects):
        client.download_file(BUCKET, item["Key"], os.path.join(directory, str(n)))
    utc = datetime.timezone.utc
    return {
        item["Key"]: item["LastModified"].astimezone(utc).replace(tzinfo=None).isoformat()
        for item in objects
    }


def restore(client, directory, saved: dict[str, str]) -> None:
    for n, key in enumerate(saved):
        client.upload_file(os.path.join(directory, str(n)), BUCKET, key)


def read_until(stream, marker: str) -> str:
    """What an unbuffered pipe gave until `marker` appeared (a start line has no newline yet), or
    until it closed."""
    seen = ""
    while marker not in seen:
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        seen += chunk.decode(errors="replace")
    return seen


def run_into_an_outage(argv, env, work, moto: Moto, marker: str) -> tuple[dict, dict[str, str]]:
    """Runs `argv`, snapshots the bucket into work/snapshot when the console shows `marker`, then
    stops the server. Returns what happened (exit status, console, stderr lines, seconds) and the
    snapshot (see `snapshot`)."""
    started = time.monotonic()
    with open(work / "stderr.txt", "w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, *argv],
            env=full_env(env),
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        console = read_until(process.stdout, marker)
        reached = time.monotonic()
        saved = snapshot(moto.client(), work / "snapshot") if marker in console else {}
        stopped = time.monotonic()
        moto.stop()
        console += process.communicate(timeout=900)[0].decode(errors="replace")
        stderr.seek(0)
        outcome = {
            "returncode": process.returncode,
            "console": console,
            "stderr": stderr.read().strip().splitlines(),
            "seconds": {
                "to the marker": round(reached - started, 1),
                "snapshot": round(stopped - reached, 1),
                "from the stop to the failure": round(time.monotonic() - stopped, 1),
            },
        }
    return outcome, saved


def test_an_unreachable_s3_endpoint_is_named_in_the_one_line_failure(monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    from pipeline import cli

    monkeypatch.setenv("S3_ENDPOINT", "127.0.0.1:9")
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    refused = ": curlCode: 7, Couldn't connect to server"  # tensorflow-io's words for it
    try:
        try:
            raise FileNotFoundError("Could not find directory s3://b/schema")  # Stat's verdict
        except FileNotFoundError:
            raise OSError(refused)  # noqa: B904 (as TFX's clean-up raises it)
    except OSError as error:
        assert cli.describe(error) == (
            "S3 endpoint http://127.0.0.1:9 unreachable "
            "(OSError: curlCode: 7, Couldn't connect to server)"
        )
    boto = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b/k")
    assert cli.describe(RuntimeError("wrapped")) == "RuntimeError: wrapped"
    assert cli.describe(boto).startswith("S3 endpoint http://127.0.0.1:9 unreachable (")
    monkeypatch.delenv("S3_ENDPOINT")
    assert cli.describe(OSError(refused)) == "OSError: curlCode: 7, Couldn't connect to server"


@pytest.mark.e2e
def test_a_run_stopped_by_an_s3_outage_fails_in_one_line_and_resumes_from_the_cache(
    s3_run, tmp_path
):
    uninterrupted = s3_run[3]
    moto = Moto(tmp_path / "moto.log").start()  # Its own: the module's server stays up.
    try:
        upload_digits(moto.client(), tmp_path)
        argv, env = pipeline_argv(tmp_path / "output"), moto.env()
        # The default retries take minutes to give up (module doc): none, for a quick failure.
        no_retry = {**env, "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "1"}
        failed, saved = run_into_an_outage(argv, no_retry, tmp_path, moto, "Trainer started")
        errors = failed["stderr"]
        print(failed["console"] + "\n".join(errors))
        print(f"{len(saved)} objects saved; seconds: {failed['seconds']}")
        assert failed["returncode"] == 1 and saved, failed
        assert len(errors) == 2, errors
        assert errors[0].startswith(
            f"siamese-tfx run: Trainer failed on s3://{BUCKET}/datasets/digits: "
            f"S3 endpoint http://127.0.0.1:{moto.port} unreachable ("
        ), errors
        assert errors[1].startswith("Full log: ")

        moto.start(last_modified=saved)  # On the same port, empty: its objects died with it.
        restore(moto.client(), tmp_path / "snapshot", saved)
        started = time.monotonic()
        rerun = run_python(argv, env, tmp_path)
        print(f"re-run in {time.monotonic() - started:.1f} s:\n{rerun.stdout}")
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-6000:]
        with open(tmp_path / "output" / "summary.json") as f:
            summary = json.load(f)
        # ServedBaseline runs again on every run by design (components/baseline/choice.uncached).
        assert summary["components"] == {
            **dict.fromkeys(UPSTREAM, "CACHED"),
            **dict.fromkeys(TRAINING, "COMPLETE"),
        }
        version = summary["pushed_model_dir"].rstrip("/").rsplit("/", 1)[1]
        assert f"serving/{version}/saved_model.pb" in keys(moto.client(), "serving/")
        # Bit-identical in most runs; see the module doc on the rare float noise.
        assert summary["metrics"] == pytest.approx(uninterrupted["metrics"])
        assert summary["training"]["epochs_run"] == uninterrupted["training"]["epochs_run"]
    finally:
        moto.stop()
