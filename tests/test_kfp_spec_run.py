"""The compiled Kubeflow spec, run step by step as open-source KFP runs it, on s3:// (moto).

No cluster (tests/kfp_driver.py): every task runs its container command from the spec as a
subprocess, fed executor inputs shaped as open-source KFP's driver shapes them. The pipeline root,
the data and the serving dir are in a local S3 server (tests/moto_s3.py), and the spec is run as
compiled, Beam's arguments included. Before each step, its inputs are downloaded as KFP's launcher
downloads them (every object under each input URI, to a scratch copy of the pod's /s3/...): a
zero-byte directory marker or a file-versus-folder clash stops the run, naming the key and the
task that wrote it. Run as root, each step runs as the image's user (uid 1000) with only its own
work dir writable. The first run pushes a model that loads from s3:// and answers
serving_default; a second run with a worse Trainer (KFP's cache reuses the steps before it)
compares against that served model and does not push.
"""

import json
import os
import shutil
import tempfile

import kfp_driver
import pytest
from conftest import TRAINING, UPSTREAM
from moto_s3 import BUCKET, SERVE_ONE, Moto, keys, markers, run_python, upload_digits

from components.evaluator import results
from components.evaluator.blessing import Blessing
from pipeline import cli, summary

pytestmark = pytest.mark.e2e

HPARAMS = ["--image-size", "16", "--epochs", "3", "--min-training-steps", "0"]
HPARAMS += ["--identities-per-batch", "10"]
HPARAMS += ["--images-per-identity", "4", "--lower-bound", "0.2", "--report-examples", "80"]
# Gate on MAP@R: on 80 eval digits even an untrained network's Precision@1 is near 1, so only a
# ranking metric tells the worse model apart.
HPARAMS += ["--gating-metric", "map_at_r"]
# One CPU for Transform's pod, as this machine has to give (had the compiled DirectRunner a
# worker process per Transform CPU, one worker).
RESOURCES = ["--gpus", "0", "--transform-cpu", "1"]
S3 = f"s3://{BUCKET}"


def constant(spec: dict, task: str, name: str):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"]


def worse_trainer(spec: dict) -> dict:
    """One step at a learning rate of 1e-12 (0 is refused): a model the change threshold must
    refuse."""
    config = constant(spec, "Trainer", "custom_config")
    hparams = json.loads(config["constant"])
    hparams.update(epochs=1, steps_per_epoch=1, learning_rate=1e-12, early_stopping_patience=0)
    config["constant"] = json.dumps(hparams)
    return spec


def metadata(run: kfp_driver.SpecRun, task: str, key: str) -> dict:
    (artifact,) = run.produced[task][key]
    return artifact["metadata"]


def versions(client) -> list[str]:
    return sorted({k.split("/")[1] for k in keys(client, "serving/")})


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = Moto(tmp_path_factory.mktemp("moto") / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pods():
    """The pods' local folders (work dirs, download scratch): outside pytest's 0700 tmp dirs so
    uid 1000 can enter them; and, as root, the interpreter made reachable for uid 1000."""
    work = tempfile.mkdtemp(prefix="kfp-pods-")
    os.chmod(work, 0o711)
    user = kfp_driver.IMAGE_UID if os.geteuid() == 0 else None
    try:
        if user is None:
            yield work, None, []
        else:
            with kfp_driver.reachable_by_others(kfp_driver.python_paths()) as granted:
                yield work, user, granted
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def spec_runs(moto, pods, tmp_path_factory):
    import yaml

    local = tmp_path_factory.mktemp("kfp-s3")
    client = moto.client()
    upload_digits(client, local)
    output = str(local / "pipeline.yaml")
    argv = ["compile", "kubeflow", "--image", "siamese-tfx:test", "--output", output]
    argv += ["--pipeline-root", f"{S3}/root", "--data", f"{S3}/datasets/digits"]
    argv += ["--data-format", "idx", "--serving-dir", f"{S3}/serving", *RESOURCES, *HPARAMS]
    assert cli.main(argv) == 0
    with open(output) as f:
        spec = yaml.safe_load(f)
    work, user, _ = pods
    cache: dict = {}
    options = {"work": work, "s3_client": client, "user": user}
    first = kfp_driver.SpecRun(spec, f"{S3}/root", "run-1", cache, moto.env(), **options).run()
    pushed = versions(client)
    worse_spec = worse_trainer(spec)
    worse = kfp_driver.SpecRun(worse_spec, f"{S3}/root", "run-2", cache, moto.env(), **options)
    worse.run()
    for run in (first, worse):  # With -s: what each pod copied in, and how long each step took.
        print(f"{run.run_id}: bytes downloaded {run.downloaded}; seconds {run.seconds}")
    return spec, client, first, pushed, worse, local


def test_every_task_runs_its_container_and_the_model_is_blessed_and_pushed(spec_runs):
    spec, client, first, pushed_versions, _, _ = spec_runs
    assert set(first.states) == set(spec["root"]["dag"]["tasks"])
    assert set(first.states.values()) == {"COMPLETE"}
    assert metadata(first, "ServedBaseline", "model")["found"] == 0  # Nothing served yet.
    assert metadata(first, "Evaluator", "blessing")["blessed"] == 1
    pushed = metadata(first, "Pusher", "pushed_model")
    assert pushed["pushed"] == 1 and len(pushed_versions) == 1
    assert pushed["pushed_destination"] == f"{S3}/serving/{pushed_versions[0]}"
    # The Trainer's model has the layout downstream steps read: Format-Serving/saved_model.pb.
    (model,) = first.produced["Trainer"]["model"]
    assert model["uri"].startswith(f"{S3}/root/run-1/Trainer/")
    model_key = model["uri"].removeprefix(f"{S3}/")
    assert keys(client, model_key)[f"{model_key}/Format-Serving/saved_model.pb"] > 0
    # Every step with input artifacts had them downloaded, as the launcher does.
    tasks = spec["root"]["dag"]["tasks"]
    with_inputs = {name for name, task in tasks.items() if task.get("inputs", {}).get("artifacts")}
    assert with_inputs and all(first.downloaded[name] > 0 for name in with_inputs)
    assert {name for name, size in first.downloaded.items() if not size} == set(tasks) - with_inputs
    assert not markers(client, "root/") + markers(client, "serving/")


def test_steps_run_as_the_images_user_with_only_their_work_dir_writable(spec_runs, pods):
    _, _, first, _, _, local = spec_runs
    work, user, granted = pods
    if user is None:
        pytest.skip("not root: the steps ran as this user")
    # The only folders opened to others: those above the interpreter (pyenv under /root).
    assert all(os.path.realpath(kfp_driver.python_paths()[0]).startswith(g) for g in granted)
    theirs = os.path.join(first.pod_dir("Trainer"), "workdir")
    assert os.stat(theirs).st_uid == user
    # The checkout and what it holds (its parent is the machine's: /tmp in a clone there).
    ours = [kfp_driver.REPO, os.path.join(kfp_driver.REPO, ".venv"), str(local), work]
    ours += [os.path.join(kfp_driver.REPO, "pipeline"), os.path.join(kfp_driver.REPO, "tests")]
    assert kfp_driver.writable_by(user, [*ours, theirs]) == [theirs]


def test_pushed_model_loads_from_s3_and_answers_serving_default(spec_runs, moto, tmp_path):
    _, _, first, _, _, _ = spec_runs
    pushed = metadata(first, "Pusher", "pushed_model")["pushed_destination"]
    process = run_python(["-c", SERVE_ONE, pushed], moto.env(), tmp_path)
    assert process.returncode == 0, process.stderr[-4000:]
    assert "EMBEDDING 64 1.0000" in process.stdout


def evaluation_copy(run: kfp_driver.SpecRun, client, scratch) -> str:
    """The Evaluator's evaluation, downloaded as a launcher would, for TFMA to read locally."""
    (evaluation,) = run.produced["Evaluator"]["evaluation"]
    kfp_driver.download_artifact(client, evaluation["uri"], str(scratch))
    return os.path.join(str(scratch), kfp_driver.local_path_for_uri(evaluation["uri"]).lstrip("/"))


def test_rerun_compares_a_worse_model_with_the_served_one_and_does_not_push(spec_runs, tmp_path):
    _, client, first, pushed_versions, worse, _ = spec_runs
    assert {task: worse.states[task] for task in UPSTREAM} == dict.fromkeys(UPSTREAM, "CACHED")
    assert {task: worse.states[task] for task in TRAINING} == dict.fromkeys(TRAINING, "COMPLETE")
    served = metadata(worse, "ServedBaseline", "model")
    assert served["found"] == 1 and served["served_version"] == pushed_versions[0]
    evaluation = evaluation_copy(worse, client, tmp_path / "worse")
    candidate, baseline = results.evaluation_metrics(evaluation)
    good_metrics, _ = results.evaluation_metrics(evaluation_copy(first, client, tmp_path / "good"))
    # The baseline evaluated is the served model: the first run's metrics again.
    assert baseline["map_at_r"] == pytest.approx(good_metrics["map_at_r"])
    assert candidate["map_at_r"] < baseline["map_at_r"] - 0.01
    blessing = Blessing(gating_metric="map_at_r", max_regression=0.01)
    reasons = " ".join(
        summary.blessing_reasons(evaluation, blessing, candidate, baseline, "served baseline")
    )
    assert "fails the change threshold" in reasons and "served baseline" in reasons
    assert metadata(worse, "Evaluator", "blessing")["blessed"] == 0
    assert not metadata(worse, "Pusher", "pushed_model").get("pushed")
    assert versions(client) == pushed_versions


def test_the_launchers_download_stops_at_a_marker_or_a_file_where_a_folder_belongs(moto, tmp_path):
    client = moto.client()
    client.put_object(Bucket=BUCKET, Key="clash/Trainer/model/Format-Serving/x.pb", Body=b"1")
    client.put_object(Bucket=BUCKET, Key="clash/Trainer/model2/ignored", Body=b"1")  # Not under.
    copied = kfp_driver.download_artifact(
        client, f"{S3}/clash/Trainer/model", str(tmp_path / "a"), "Evaluator.model", "Trainer"
    )
    assert copied == 1
    assert (tmp_path / "a" / "s3" / BUCKET / "clash/Trainer/model/Format-Serving/x.pb").exists()
    assert not (tmp_path / "a" / "s3" / BUCKET / "clash/Trainer/model2").exists()

    client.put_object(Bucket=BUCKET, Key="clash/Trainer/model/Format-Serving/", Body=b"")
    with pytest.raises(kfp_driver.DownloadFailed) as marker:
        kfp_driver.download_artifact(
            client, f"{S3}/clash/Trainer/model", str(tmp_path / "b"), "Evaluator.model", "Trainer"
        )
    assert f"s3://{BUCKET}/clash/Trainer/model/Format-Serving/" in str(marker.value)
    assert "'Evaluator.model' (written by Trainer)" in str(marker.value)

    # A key that is a prefix of another: the file Format-Serving, then Format-Serving/x.pb.
    client.delete_object(Bucket=BUCKET, Key="clash/Trainer/model/Format-Serving/")
    client.put_object(Bucket=BUCKET, Key="clash/Trainer/model/Format-Serving", Body=b"2")
    with pytest.raises(kfp_driver.DownloadFailed) as clash:
        kfp_driver.download_artifact(
            client, f"{S3}/clash/Trainer/model", str(tmp_path / "c"), "Pusher.model", "Trainer"
        )
    assert f"s3://{BUCKET}/clash/Trainer/model/Format-Serving/x.pb" in str(clash.value)
    assert "(written by Trainer)" in str(clash.value)
