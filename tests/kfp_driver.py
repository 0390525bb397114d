"""Runs a compiled KFP v2 PipelineSpec here, task by task, as open-source KFP's driver would.

No cluster: the DAG is walked in topological order (tasks whose inputs are ready run side by
side, two at a time); each task gets the executor input the OSS
driver builds (parameters from the spec; input artifacts with an empty instance_schema and the
metadata their producer wrote; output URIs under a local pipeline root, plus the driver's own
`executor-logs` output), and the container's command and args from the spec run as a subprocess.
Outputs are typed with `system.*` titles, as issue reports from TFX users describe; the driver's
source (kubeflow/pipelines backend/src/v2/driver) passes the spec's types through, so this is the
stricter of the two. Each executor
output goes downstream as the launcher hands it on. Tasks whose cache is on and whose inputs are
unchanged reuse an earlier run's outputs, as KFP's cache does.

On a bucket root (`s3://`, with `s3_client`), a task starts as KFP's launcher starts it
(backend/src/v2/component/launcher_v2.go, downloadArtifacts; objectstore.DownloadBlob): every
object under each input artifact's URI is copied to a scratch folder mirroring the pod's
`/s3/<bucket>/<key>` (LocalPathForURI; `/gcs/`, `/minio/` for the other schemes), whether or not
the step reads it there (ours reads the s3:// URI itself). A zero-byte `.../` key, or an object
that cannot be written there (a key that is a prefix of another: a file where a folder belongs),
stops the run with DownloadFailed, naming the key and the task that wrote it; the launcher would
fail the step, or hand it a file where a folder belongs. Local URIs are not downloaded (the
launcher skips URIs it has no scratch folder for). The step's executor_output.json is local, in
its work dir, as the pod's /tmp/kfp_outputs is.

Run as root (`user`), each step runs as the image's user (uid 1000, Dockerfile), with its own
work dir (cwd, HOME, TMPDIR) as the only place of ours it can write.
"""

import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from graphlib import TopologicalSorter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, "Dockerfile")
# The OSS driver's titles for TFX's types (what ML Metadata hands back), by TFX title.
SYSTEM_TITLES = {
    "tfx.Examples": "system.Dataset",
    "tfx.Model": "system.Model",
    "tfx.PushedModel": "system.Model",
    "tfx.ExampleStatistics": "system.Statistics",
    "tfx.ModelEvaluation": "system.Metrics",
}

IMAGE_UID = 1000  # The Dockerfile's user; its group has the same id.
# launcher_v2.go LocalPathForURI: the pod's scratch folder of each scheme (emptyDirs).
SCRATCH = {"gs": "gcs", "s3": "s3", "minio": "minio"}


class StepFailed(AssertionError):
    """A task's container exited non-zero; the message has its command and output tail."""


class DownloadFailed(AssertionError):
    """KFP's launcher could not have downloaded an input as a step's pod would need it."""


def image_env() -> dict:
    """The environment the Dockerfile's ENV gives every step (TF_USE_LEGACY_KERAS...)."""
    with open(DOCKERFILE) as f:
        text = f.read().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                name, _, value = item.partition("=")
                if name in ("TF_USE_LEGACY_KERAS", "PYTHONUNBUFFERED"):
                    env[name] = value
    return env


def task_graph(spec: dict) -> dict[str, set[str]]:
    """Task name -> the tasks it depends on or reads artifacts from."""
    graph = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        producers = {
            source["taskOutputArtifact"]["producerTask"]
            for source in task.get("inputs", {}).get("artifacts", {}).values()
        }
        graph[name] = set(task.get("dependentTasks", [])) | producers
    return graph


def system_type(artifact_type: dict) -> dict:
    """What the OSS driver hands over: a system.* title (system.Artifact for the rest)."""
    import yaml

    title = artifact_type.get("schemaTitle")
    if not title:
        title = (yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}).get("title")
    return {"schemaTitle": SYSTEM_TITLES.get(title, "system.Artifact")}


def task_executor_input(
    spec: dict, name: str, root: str, run_id: str, produced: dict, output_file: str = ""
) -> dict:
    """What the driver hands `name`; `output_file`: the local executor_output.json (default:
    beside its outputs, for a local root)."""
    task = spec["root"]["dag"]["tasks"][name]
    component = spec["components"][task["componentRef"]["name"]]
    parameters = {
        key: value["runtimeValue"]["constant"]
        for key, value in task.get("inputs", {}).get("parameters", {}).items()
    }
    inputs = {}
    for key, source in task.get("inputs", {}).get("artifacts", {}).items():
        producer = source["taskOutputArtifact"]
        artifacts = produced[producer["producerTask"]][producer["outputArtifactKey"]]
        # Resolved from ML Metadata: no type schema of TFX's, only the metadata recorded.
        inputs[key] = {"artifacts": [{**a, "type": {"instanceSchema": ""}} for a in artifacts]}
    outputs = {}
    for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
        uri = os.path.join(root, run_id, name, key)
        outputs[key] = {
            "artifacts": [{"name": "", "uri": uri, "type": system_type(definition["artifactType"])}]
        }
    # KFP >= 2.5's driver adds this output to every task for its launcher's log upload.
    logs = os.path.join(root, run_id, name, "executor-logs")
    outputs["executor-logs"] = {
        "artifacts": [
            {"name": "executor-logs", "uri": logs, "type": {"schemaTitle": "system.Artifact"}}
        ]
    }
    return {
        "inputs": {"parameterValues": parameters, "artifacts": inputs},
        "outputs": {
            "artifacts": outputs,
            "outputFile": output_file or os.path.join(root, run_id, name, "executor_output.json"),
        },
    }


def local_path_for_uri(uri: str) -> str | None:
    """The pod's path of an artifact's copy (LocalPathForURI), or None for a local URI."""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme not in SCRATCH:
        return None
    return f"/{SCRATCH[scheme]}/{rest}"


def download_artifact(client, uri: str, scratch: str, input_key: str = "", producer: str = ""):
    """Copies every object under s3:// `uri` to `scratch` + its pod path, in listing order, as
    objectstore.DownloadBlob does; returns the bytes copied. Raises DownloadFailed on a zero-byte
    `.../` key and on any object that cannot be written where the launcher writes it."""
    local = local_path_for_uri(uri)
    if local is None:
        return 0
    if not uri.startswith("s3://"):
        raise NotImplementedError(f"only s3:// inputs are downloaded here, not {uri}")
    bucket, _, blob_dir = uri.removeprefix("s3://").partition("/")
    target = os.path.join(scratch, local.lstrip("/"))
    whose = f"input {input_key!r} (written by {producer or 'an unknown task'})"
    copied = 0
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=blob_dir)
    for item in (item for page in pages for item in page.get("Contents", [])):
        key, base = item["Key"], blob_dir.rstrip("/")
        if key != base and not key.startswith(base + "/"):
            continue  # isBlobKeyUnderPrefix: outputs/model2 is not under outputs/model.
        if key.endswith("/") and item["Size"] == 0:
            raise DownloadFailed(
                f"zero-byte directory marker s3://{bucket}/{key} in {whose}: KFP's launcher "
                "downloads it as a file, and then nothing can be written beneath it"
            )
        path = os.path.normpath(os.path.join(target, os.path.relpath(key, blob_dir)))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            client.download_file(bucket, key, path)
        except OSError as error:
            raise DownloadFailed(
                f"KFP's launcher cannot download s3://{bucket}/{key} of {whose} to {path}: "
                f"{error} (e.g. a key that is a prefix of another: a file where a folder belongs)"
            ) from error
        copied += item["Size"]
    return copied


def python_paths() -> list[str]:
    """What running this venv's Python needs to reach: the interpreter, libpython, stdlib."""
    return [
        os.path.realpath(sys.executable),
        sysconfig.get_config_var("LIBDIR") or "",
        sysconfig.get_paths()["stdlib"],
        sys.prefix,
    ]


@contextmanager
def reachable_by_others(paths: list[str]):
    """Grants o+x (enter, not list) on each folder of `paths` and above them that lacks it, for
    as long as the block runs, then puts the modes back. With pyenv under /root (0700), uid 1000
    cannot reach the venv's interpreter or libpython3.10.so otherwise; all below is 0755."""
    changed = {}
    for path in filter(None, paths):
        folder = os.path.abspath(path)
        folder = folder if os.path.isdir(folder) else os.path.dirname(folder)
        while True:
            mode = stat.S_IMODE(os.stat(folder).st_mode)
            if not mode & stat.S_IXOTH and folder not in changed:
                os.chmod(folder, mode | stat.S_IXOTH)
                changed[folder] = mode
            if folder == os.path.dirname(folder):
                break
            folder = os.path.dirname(folder)
    try:
        yield sorted(changed)
    finally:
        for folder, mode in changed.items():
            os.chmod(folder, mode)


def writable_by(uid: int, paths: list[str]) -> list[str]:
    """Those of `paths` that user `uid` could write (checked by a shell running as `uid`)."""
    probe = 'for p in "$@"; do test -w "$p" && echo "$p"; done; true'
    found = subprocess.run(
        ["/bin/sh", "-c", probe, "sh", *paths],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


def command_line(spec: dict, name: str, invocation: dict) -> list[str]:
    """The pod's command: the spec's command and args, `{{$}}` filled in as KFP does."""
    task = spec["root"]["dag"]["tasks"][name]
    label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][label]["container"]
    args = [json.dumps(invocation) if arg == "{{$}}" else arg for arg in container["args"]]
    return [*container["command"], *args]


def cache_key(spec: dict, name: str, invocation: dict) -> str:
    """What KFP's cache keys on: the component, its parameters and input artifacts."""
    task = spec["root"]["dag"]["tasks"][name]
    facts = {
        "component": spec["components"][task["componentRef"]["name"]],
        "inputs": invocation["inputs"],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class SpecRun:
    """One pipeline run of `spec` under `root`; `cache` carries outputs between runs."""

    def __init__(
        self,
        spec: dict,
        root: str,
        run_id: str,
        cache: dict,
        env: dict | None = None,
        *,
        work: str = "",
        s3_client=None,
        user: int | None = None,
    ):
        """`root`: the pipeline root (local or s3://); `work`: local folder for the pods' work
        dirs and download scratch (default `root`); `s3_client`: boto3's, to download s3://
        inputs as the launcher does; `user`: the uid (and gid) the steps run as."""
        self.spec, self.root, self.run_id, self.cache = spec, root, run_id, cache
        self.env = env or {}
        self.work, self.s3_client, self.user = work or root, s3_client, user
        self.produced: dict[str, dict[str, list]] = {}
        self.states: dict[str, str] = {}
        self.invocations: dict[str, dict] = {}
        self.downloaded: dict[str, int] = {}  # Task -> bytes its launcher copied in.
        self.seconds: dict[str, float] = {}  # Task -> its download and step, wall time.

    def run(self, parallel: int = 2) -> "SpecRun":
        """Runs every task once its upstream tasks are done, `parallel` at a time (as Argo)."""
        sorter = TopologicalSorter(task_graph(self.spec))
        sorter.prepare()
        with ThreadPoolExecutor(parallel) as pool:
            running = {}
            while sorter.is_active():
                for name in sorter.get_ready():
                    running[pool.submit(self.run_task, name)] = name
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()  # A failed step stops the run, as in KFP.
                    sorter.done(running.pop(future))
        return self

    def pod_dir(self, name: str) -> str:
        """The task's own local folder: its work dir, and the launcher's scratch beside it."""
        return os.path.join(self.work, self.run_id, name)

    def run_task(self, name: str) -> None:
        pod = self.pod_dir(name)
        workdir = os.path.join(pod, "workdir")  # Not the repo: code is the package's.
        output_file = os.path.join(workdir, "tmp", "kfp_outputs", "output_metadata.json")
        if self.root.startswith(tuple(f"{scheme}://" for scheme in SCRATCH)):
            invocation = task_executor_input(
                self.spec, name, self.root, self.run_id, self.produced, output_file
            )
        else:
            invocation = task_executor_input(self.spec, name, self.root, self.run_id, self.produced)
        self.invocations[name] = invocation
        task = self.spec["root"]["dag"]["tasks"][name]
        key = cache_key(self.spec, name, invocation)
        if task.get("cachingOptions", {}).get("enableCache") and key in self.cache:
            self.produced[name] = self.cache[key]
            self.states[name] = "CACHED"
            return
        started = time.monotonic()
        self.downloaded[name] = self.download_inputs(name, invocation, os.path.join(pod, "scratch"))
        command = command_line(self.spec, name, invocation)
        os.makedirs(os.path.dirname(output_file), exist_ok=True)
        env = {**os.environ, **image_env(), **self.env}
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        as_user = {}
        if self.user is not None:
            for folder in (os.path.dirname(pod), pod):  # Entered, not listed or written.
                os.chmod(folder, 0o711)
            for folder, _, _ in os.walk(workdir):  # workdir, its tmp and tmp/kfp_outputs
                os.chown(folder, self.user, self.user)
            env.update(HOME=workdir, TMPDIR=os.path.join(workdir, "tmp"), USER="kfp")
            as_user = {"user": self.user, "group": self.user, "extra_groups": []}
        process = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, **as_user
        )
        shutil.rmtree(os.path.join(pod, "scratch"), ignore_errors=True)  # The pod's emptyDir.
        self.seconds[name] = round(time.monotonic() - started, 1)
        if process.returncode != 0:
            raise StepFailed(
                f"{name} exited {process.returncode}: {shlex.join(command[:3])} ...\n"
                f"{process.stdout[-3000:]}\n{process.stderr[-6000:]}"
            )
        self.produced[name] = self.launcher_outputs(invocation)
        self.cache[key] = self.produced[name]
        self.states[name] = "COMPLETE"

    def download_inputs(self, name: str, invocation: dict, scratch: str) -> int:
        """The launcher's downloadArtifacts for a task; returns the bytes copied."""
        if self.s3_client is None:
            return 0
        sources = self.spec["root"]["dag"]["tasks"][name].get("inputs", {}).get("artifacts", {})
        copied = 0
        for key, group in invocation["inputs"]["artifacts"].items():
            producer = sources[key]["taskOutputArtifact"]["producerTask"]
            for artifact in group["artifacts"]:
                copied += download_artifact(
                    self.s3_client, artifact["uri"], scratch, f"{name}.{key}", producer
                )
        return copied

    @staticmethod
    def launcher_outputs(invocation: dict) -> dict[str, list]:
        """Output artifacts as the launcher records them: its URIs, the executor's metadata."""
        path = invocation["outputs"]["outputFile"]
        written = {}
        if os.path.exists(path):
            with open(path) as f:
                written = json.load(f).get("artifacts", {})
        produced = {}
        for key, planned in invocation["outputs"]["artifacts"].items():
            (artifact,) = planned["artifacts"]
            reported = written.get(key, {}).get("artifacts", [{}])[0]
            if reported.get("uri", artifact["uri"]) != artifact["uri"]:
                raise AssertionError(f"{key}: executor moved its output to {reported['uri']}")
            produced[key] = [
                {
                    "name": f"{artifact['uri']}",
                    "uri": artifact["uri"],
                    "metadata": reported.get("metadata", {}),
                }
            ]
        return produced
