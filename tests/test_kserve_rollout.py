"""pipeline/kserve_rollout.py against a real HTTP server playing the Kubernetes API server.

The kubernetes client is pointed at http://127.0.0.1:PORT; the server records each request and
answers with a canned status and body, so the test sees what goes over the wire: the method,
the path of the InferenceService, the merge-patch content type and the JSON body; and what a
404 or 403 from the API server becomes.
"""

import http.server
import json
import socket
import threading

import pytest
import yaml
from kubernetes import client

from pipeline import kserve_rollout

NAMESPACE, NAME, VERSION = "kubeflow", "siamese", "1712345678"
PATH = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/{NAME}"


def status_body(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


class ApiServer(http.server.ThreadingHTTPServer):
    """Records requests; answers each with (self.status, self.answer)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests, self.status, self.answer = [], 200, {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_PATCH(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append((self.command, self.path, headers, body))
        answer = json.dumps(self.server.answer).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server():
    server = ApiServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api_client(api_server):
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{api_server.server_address[1]}"
    configuration.api_key = {"authorization": "token-of-the-test"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(configuration) as api:
        yield api


def test_the_patch_sets_the_pushed_version_on_the_predictor():
    assert kserve_rollout.rollout_patch(VERSION) == {
        "spec": {"predictor": {"annotations": {kserve_rollout.PUSHED_VERSION: VERSION}}}
    }


@pytest.mark.parametrize("version", ["", "v1", "12/3", "1.5", 1712345678, None])
def test_a_version_that_is_not_a_version_directory_is_refused(version):
    with pytest.raises(ValueError, match="directory name of digits"):
        kserve_rollout.rollout_patch(version)


def test_apply_rollout_sends_one_merge_patch_to_the_inference_service(api_server, api_client):
    api_server.answer = {"kind": "InferenceService", "metadata": {"name": NAME, "generation": 2}}
    patched = kserve_rollout.apply_rollout(NAMESPACE, NAME, VERSION, api_client=api_client)
    assert patched["metadata"]["generation"] == 2
    ((method, path, headers, body),) = api_server.requests
    assert (method, path) == ("PATCH", PATH)
    assert headers["content-type"] == "application/merge-patch+json"
    assert headers["authorization"] == "Bearer token-of-the-test"
    assert json.loads(body) == kserve_rollout.rollout_patch(VERSION)


@pytest.mark.parametrize(
    "status, reason, message, expected",
    [
        (
            404,
            "NotFound",
            f'inferenceservices.serving.kserve.io "{NAME}" not found',
            f"InferenceService {NAMESPACE}/{NAME}: not found (HTTP 404): apply kubeflow/kserve",
        ),
        (
            403,
            "Forbidden",
            f'inferenceservices.serving.kserve.io "{NAME}" is forbidden: User '
            f'"system:serviceaccount:{NAMESPACE}:pipeline-runner" cannot patch resource\n'
            f'"inferenceservices" in API group "serving.kserve.io" in the namespace "{NAMESPACE}"',
            f"InferenceService {NAMESPACE}/{NAME}: forbidden (HTTP 403): this service account "
            f"needs verb 'patch' on resource 'inferenceservices' in API group 'serving.kserve.io' "
            f"in namespace '{NAMESPACE}'",
        ),
    ],
)
def test_a_refusal_is_one_line_naming_the_inference_service_and_the_fix(
    api_server, api_client, status, reason, message, expected
):
    api_server.status, api_server.answer = status, status_body(status, reason, message)
    with pytest.raises(kserve_rollout.RolloutError) as raised:
        kserve_rollout.apply_rollout(NAMESPACE, NAME, VERSION, api_client=api_client)
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith(expected), line
    # The API server's own words follow, on the same line (for 403: which account it was).
    assert " ".join(message.split()) in line


def test_an_unreachable_api_server_is_one_line():
    with socket.socket() as free:  # A port nothing listens on once closed.
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    configuration = client.Configuration()
    configuration.host, configuration.retries = f"http://127.0.0.1:{port}", 0
    with client.ApiClient(configuration) as api, pytest.raises(kserve_rollout.RolloutError) as e:
        kserve_rollout.apply_rollout(NAMESPACE, NAME, VERSION, api_client=api)
    line = str(e.value)
    assert line.startswith(f"InferenceService {NAMESPACE}/{NAME}: Kubernetes API unreachable")
    assert "\n" not in line


def test_outside_a_cluster_the_default_credentials_are_missing_in_one_line(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kserve_rollout.RolloutError, match="no in-cluster Kubernetes credentials"):
        kserve_rollout.apply_rollout(NAMESPACE, NAME, VERSION)


def test_the_rollout_step_patches_the_newest_version_in_the_serving_dir(
    api_server, api_client, tmp_path
):
    from pipeline import rollout_step

    serving_dir = tmp_path / "serving"
    assert rollout_step.roll_out(str(serving_dir), f"{NAMESPACE}/{NAME}", api_client) is None
    for version in ("1700000000", "1700000100", ".partial-1700000200-ab"):
        (serving_dir / version).mkdir(parents=True)
        (serving_dir / version / "saved_model.pb").write_bytes(b"")
    (serving_dir / "1700000300").mkdir()  # Being pushed: no saved_model.pb yet.
    version = rollout_step.roll_out(str(serving_dir), f"{NAMESPACE}/{NAME}", api_client)
    assert version == "1700000100"
    ((method, path, _, body),) = api_server.requests
    assert (method, path) == ("PATCH", PATH)
    assert json.loads(body) == kserve_rollout.rollout_patch("1700000100")


def test_inference_service_compiles_a_rollout_step_after_the_pusher(tmp_path, capsys):
    from pipeline import cli

    output = tmp_path / "pipeline.yaml"
    argv = ["compile", "kubeflow", "--image", "registry.example/siamese-tfx:1",
            "--pipeline-root", "s3://bucket/root", "--data", "s3://bucket/digits",
            "--data-format", "idx", "--serving-dir", "s3://bucket/serving",
            "--output", str(output)]  # fmt: skip
    assert cli.main([*argv, "--inference-service", f"{NAMESPACE}/{NAME}"]) == 0
    with open(output) as f:
        spec = yaml.safe_load(f)
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["KServeRollout"]["dependentTasks"] == ["Pusher"]
    executor = spec["deploymentSpec"]["executors"]["KServeRollout_executor"]["container"]
    assert "pipeline.rollout_step.KServeRollout_Executor" in " ".join(executor["args"])
    constants = tasks["KServeRollout"]["inputs"]["parameters"]
    assert constants["inference_service"]["runtimeValue"]["constant"] == f"{NAMESPACE}/{NAME}"
    assert constants["serving_dir"]["runtimeValue"]["constant"] == "s3://bucket/serving"
    assert cli.main([*argv]) == 0  # Without the option: no rollout step.
    with open(output) as f:
        assert "KServeRollout" not in yaml.safe_load(f)["root"]["dag"]["tasks"]
    capsys.readouterr()
    assert cli.main([*argv, "--inference-service", "siamese"]) == 2
    assert "--inference-service siamese: expected NAMESPACE/NAME" in capsys.readouterr().err
