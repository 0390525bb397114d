"""Rolls a KServe InferenceService onto the model version the Pusher just wrote.

KServe's storage initializer copies `storageUri` (the serving dir, every `<version>` in it) into
the predictor pod once, when the pod starts; TF Serving in that pod serves the highest version it
was given and never sees a newer one in the bucket. What makes KServe start a new pod is a change
to the predictor's pod template, and `spec.predictor.annotations` is copied onto it: onto the
Knative revision template in Serverless mode (a new revision), onto the Deployment's pod template
in RawDeployment mode (a rolling update). So a rollout is one JSON merge patch setting the
annotation PUSHED_VERSION to the pushed version: the new pod copies the serving dir again, and
the old one serves until the new one is ready. Patching the same version twice changes nothing.

`rollout_patch(version)` is that patch; `apply_rollout(namespace, name, version)` sends it to
the Kubernetes API (in-cluster credentials unless given an ApiClient) and fails with one line,
RolloutError, naming the InferenceService and what is wrong. The caller needs `patch` on
`inferenceservices.serving.kserve.io` in the namespace (kubeflow/kserve.yaml's Role).
"""

import json

GROUP, API_VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
# The predictor annotation that carries the version; a new value starts a new predictor pod.
PUSHED_VERSION = "siamese-tfx/pushed-version"


class RolloutError(Exception):
    """The InferenceService could not be patched; the message is one line saying why."""


def rollout_patch(version: str) -> dict:
    """The JSON merge patch (RFC 7386) that rolls the predictor onto `version`."""
    if not (isinstance(version, str) and version.isdigit()):
        raise ValueError(f"a pushed version is a directory name of digits, got {version!r}")
    return {"spec": {"predictor": {"annotations": {PUSHED_VERSION: version}}}}


def _status_message(body) -> str:
    """The `message` of the API server's Status body, on one line, or ''."""
    try:
        message = json.loads(body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        return ""
    return " ".join(str(message).split())


def _explain(status: int | None, reason: str | None, namespace: str) -> str:
    if status == 404:
        return "not found (HTTP 404): apply kubeflow/kserve.yaml in this namespace first"
    if status == 403:
        return (
            f"forbidden (HTTP 403): this service account needs verb 'patch' on resource "
            f"'{PLURAL}' in API group '{GROUP}' in namespace '{namespace}' "
            f"(kubeflow/kserve.yaml's Role and RoleBinding)"
        )
    if status == 401:
        return "unauthorized (HTTP 401): the API server refused these credentials"
    if status == 422:
        return "patch refused as invalid (HTTP 422)"
    return f"HTTP {status} {reason or ''}".rstrip()


def apply_rollout(namespace: str, name: str, version: str, api_client=None) -> dict:
    """Patches InferenceService `namespace/name` onto `version`; returns the patched object.

    Without `api_client`, connects with the pod's in-cluster service account."""
    patch = rollout_patch(version)
    what = f"InferenceService {namespace}/{name}"
    import urllib3
    from kubernetes import client, config

    if api_client is None:
        try:
            config.load_incluster_config()
        except config.ConfigException as e:
            raise RolloutError(f"{what}: no in-cluster Kubernetes credentials ({e})") from None
        api_client = client.ApiClient()
    api = client.CustomObjectsApi(api_client)
    try:
        return api.patch_namespaced_custom_object(
            GROUP, API_VERSION, namespace, PLURAL, name, patch
        )
    except client.ApiException as e:
        reason = _explain(e.status, e.reason, namespace)
        detail = _status_message(e.body)
        suffix = f"; API server: {detail}" if detail else ""
        raise RolloutError(f"{what}: {reason}{suffix}") from None
    except urllib3.exceptions.HTTPError as e:  # Connection refused, DNS, TLS, timeouts.
        detail = " ".join(str(e).split())
        raise RolloutError(f"{what}: Kubernetes API unreachable: {detail}") from None
