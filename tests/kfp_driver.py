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
"""

import hashlib
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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


class StepFailed(AssertionError):
    """A task's container exited non-zero; the message has its command and output tail."""


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


def task_executor_input(spec: dict, name: str, root: str, run_id: str, produced: dict) -> dict:
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
            "outputFile": os.path.join(root, run_id, name, "executor_output.json"),
        },
    }


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

    def __init__(self, spec: dict, root: str, run_id: str, cache: dict, env: dict | None = None):
        self.spec, self.root, self.run_id, self.cache = spec, root, run_id, cache
        self.env = env or {}
        self.produced: dict[str, dict[str, list]] = {}
        self.states: dict[str, str] = {}
        self.invocations: dict[str, dict] = {}

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

    def run_task(self, name: str) -> None:
        invocation = task_executor_input(self.spec, name, self.root, self.run_id, self.produced)
        self.invocations[name] = invocation
        task = self.spec["root"]["dag"]["tasks"][name]
        key = cache_key(self.spec, name, invocation)
        if task.get("cachingOptions", {}).get("enableCache") and key in self.cache:
            self.produced[name] = self.cache[key]
            self.states[name] = "CACHED"
            return
        command = command_line(self.spec, name, invocation)
        workdir = os.path.join(self.root, "workdir")  # Not the repo: code is the package's.
        os.makedirs(workdir, exist_ok=True)
        env = {**os.environ, **image_env(), **self.env}
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        process = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
        )
        if process.returncode != 0:
            raise StepFailed(
                f"{name} exited {process.returncode}: {shlex.join(command[:3])} ...\n"
                f"{process.stdout[-3000:]}\n{process.stderr[-6000:]}"
            )
        self.produced[name] = self.launcher_outputs(invocation)
        self.cache[key] = self.produced[name]
        self.states[name] = "COMPLETE"

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
