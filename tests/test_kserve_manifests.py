"""The serving manifests in kubeflow/ are what the API server would keep, field for field.

Kubernetes prunes fields its schema does not know, silently: a misspelt `storageUri` passes
`kubectl apply` and does nothing. So every document is checked strictly, unknown fields
included:
- the InferenceService against KServe's own CRD schema (tests/schemas/, the openAPIV3Schema of
  serving.kserve.io/v1beta1), with `additionalProperties: false` added wherever the schema lists
  `properties` and does not set `x-kubernetes-preserve-unknown-fields`;
- core kinds (Secret, ServiceAccount, Role, RoleBinding, Deployment, Service) and every
  `metadata` against the kubernetes client's generated models, which carry each field's JSON
  name and type (Kubernetes 1.26's OpenAPI) and refuse a missing required field.
Then the facts the manifests must agree on: TF Serving's version, ports, the credentials chain,
the rollout patch and its RBAC.
"""

import copy
import json
import os
import re

import jsonschema
import pytest
import yaml
from kubernetes import client

from pipeline import kserve_rollout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KSERVE = os.path.join(REPO, "kubeflow", "kserve.yaml")
TF_SERVING = os.path.join(REPO, "kubeflow", "tf-serving.yaml")
README = os.path.join(REPO, "kubeflow", "README.md")
ISVC_SCHEMA = os.path.join(REPO, "tests", "schemas", "inferenceservice-v1beta1.json")

ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
CORE_KINDS = {
    ("v1", "Secret"): "V1Secret",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
}
# KServe's config/runtimes/kserve-tensorflow-serving.yaml (v0.20.0): the container's args.
RUNTIME = "kserve-tensorflow-serving"
RUNTIME_REST_PORT, RUNTIME_GRPC_PORT = 8080, 9000
TF_SERVING_VERSION = "2.16.1"


def documents(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def strict(schema):
    """The schema with unknown fields refused where Kubernetes would prune them."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


with open(ISVC_SCHEMA) as f:
    ISVC_VALIDATOR = jsonschema.Draft7Validator(strict(json.load(f)))
CLIENT_CONFIG = client.Configuration()
CLIENT_CONFIG.client_side_validation = True


def model_errors(value, type_name: str, path: str) -> list[str]:
    """Where `value` does not fit the kubernetes client's type `type_name` (e.g. 'V1Pod')."""
    leaf = {"str": str, "int": int, "bool": bool, "datetime": str, "float": (int, float)}
    if type_name == "object":  # IntOrString and free-form values.
        return []
    if type_name in leaf:
        if isinstance(value, leaf[type_name]) and not (
            type_name == "int" and isinstance(value, bool)
        ):
            return []
        return [f"{path}: {value!r} is not {type_name}"]
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [e for i, v in enumerate(value) for e in model_errors(v, match[1], f"{path}[{i}]")]
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a map"]
        return [e for k, v in value.items() for e in model_errors(v, match[1], f"{path}.{k}")]
    model = getattr(client, type_name)
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not an object ({type_name})"]
    python_name = {json_name: py for py, json_name in model.attribute_map.items()}
    errors = [f"{path}.{k}: not a field of {type_name}" for k in value if k not in python_name]
    for key, item in value.items():
        if key in python_name:
            errors += model_errors(item, model.openapi_types[python_name[key]], f"{path}.{key}")
    try:
        known = {python_name[k]: v for k, v in value.items() if k in python_name}
        model(local_vars_configuration=CLIENT_CONFIG, **known)
    except ValueError as e:  # "Invalid value for `name`, must not be `None`"
        errors.append(f"{path}: {type_name}: {e}")
    return errors


def manifest_errors(doc: dict) -> list[str]:
    """Every reason the API server would refuse `doc` or drop part of it."""
    where = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key == ISVC:
        errors = [
            f"{where}: {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in ISVC_VALIDATOR.iter_errors(doc)
        ]
        return errors + model_errors(doc.get("metadata"), "V1ObjectMeta", f"{where}: metadata")
    if key in CORE_KINDS:
        return model_errors(doc, CORE_KINDS[key], where)
    return [f"{where}: no schema here for apiVersion {key[0]} kind {key[1]}"]


@pytest.fixture(scope="module")
def kserve():
    return documents(KSERVE)


@pytest.fixture(scope="module")
def isvc(kserve):
    (only,) = by_kind(kserve, "InferenceService")
    return only


@pytest.mark.parametrize("path", [KSERVE, TF_SERVING], ids=os.path.basename)
def test_every_document_is_valid_and_has_no_unknown_field(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        assert manifest_errors(doc) == []


@pytest.mark.parametrize(
    "where, field, value, expected",
    [
        # The InferenceService's schema: a misspelt field, a wrong type, a missing required one.
        ("isvc", "spec.predictor.model.storageURI", "s3://b/s/", "'storageURI' was unexpected"),
        ("isvc", "spec.predictor.minReplicas", "1", "'1' is not of type 'integer'"),
        ("isvc", "spec.predictor.model.modelFormat", {"version": "2"}, "'name' is a required"),
        ("isvc", "metadata.anotations", {"a": "b"}, "anotations: not a field of V1ObjectMeta"),
        # A core kind through the client's models.
        ("deployment", "spec.template.spec.containers.0.imagePulPolicy", "Always", "not a field"),
        ("deployment", "spec.replicas", "1", "'1' is not int"),
        ("deployment", "spec.selector", None, "`selector`, must not be `None`"),
    ],
)
def test_a_typo_a_wrong_type_or_a_missing_field_is_caught(isvc, where, field, value, expected):
    deployment = by_kind(documents(TF_SERVING), "Deployment")[0]
    doc = copy.deepcopy(isvc if where == "isvc" else deployment)
    *parents, last = field.split(".")
    node = doc
    for name in parents:
        node = node[int(name)] if name.isdigit() else node[name]
    if value is None:
        del node[last]
    else:
        node[last] = value
    errors = manifest_errors(doc)
    assert any(expected in e for e in errors), errors


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch, what the API server applies for application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def test_the_rollout_patch_keeps_the_inference_service_valid_and_changes_the_pod_template(isvc):
    patched = merge_patch(isvc, kserve_rollout.rollout_patch("1712345678"))
    assert manifest_errors(patched) == []
    annotations = patched["spec"]["predictor"]["annotations"]
    assert annotations == {kserve_rollout.PUSHED_VERSION: "1712345678"}
    # Only the annotation changed; the manifest itself carries none, so re-applying it with
    # kubectl leaves the rollout's value alone.
    del patched["spec"]["predictor"]["annotations"]
    assert patched == isvc
    # The new pod starts before the old one stops.
    strategy = isvc["spec"]["predictor"]["deploymentStrategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    # An annotation key Kubernetes accepts: DNS-subdomain prefix / name of at most 63 characters.
    prefix, name = kserve_rollout.PUSHED_VERSION.split("/")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", prefix) and len(prefix) <= 253
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name) and len(name) <= 63


def test_the_predictor_is_tf_serving_2_16_1_from_the_serving_dir_on_rest_and_grpc(isvc):
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "tensorflow", "version": "2"}
    assert (model["runtime"], model["runtimeVersion"]) == (RUNTIME, TF_SERVING_VERSION)
    # REST first (the Service's port 80), then gRPC: a name with "grpc" gets appProtocol h2c.
    ports = [(p["name"], p["containerPort"]) for p in model["ports"]]
    assert ports == [("http", RUNTIME_REST_PORT), ("grpc", RUNTIME_GRPC_PORT)]
    # TF Serving's model name is the InferenceService's (--model_name={{.Name}}).
    name = isvc["metadata"]["name"]
    probe = model["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == (f"/v1/models/{name}/metadata", RUNTIME_REST_PORT)
    # The serving dir the README compiles with, as a directory prefix.
    uri = model["storageUri"]
    assert uri.startswith("s3://") and uri.endswith("/")
    with open(README) as f:
        serving_dirs = set(re.findall(r"--serving-dir (\S+)", f.read()))
    assert serving_dirs == {uri.rstrip("/")}


def test_the_raw_deployment_runs_the_same_tf_serving():
    (deployment,) = by_kind(documents(TF_SERVING), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"tensorflow/serving:{TF_SERVING_VERSION}"


def test_the_predictor_reads_minio_through_its_service_account(kserve, isvc):
    (account,) = by_kind(kserve, "ServiceAccount")
    (secret,) = by_kind(kserve, "Secret")
    assert isvc["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]
    # KServe's pkg/credentials/s3: the annotations it reads, and the data keys
    # inferenceservice-config names (s3AccessKeyIDName, s3SecretAccessKeyName).
    assert set(secret["metadata"]["annotations"]) == {
        "serving.kserve.io/s3-endpoint",
        "serving.kserve.io/s3-usehttps",
        "serving.kserve.io/s3-verifyssl",
        "serving.kserve.io/s3-region",
    }
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_the_pipeline_may_get_and_patch_this_inference_service(kserve, isvc):
    (role,) = by_kind(kserve, "Role")
    (binding,) = by_kind(kserve, "RoleBinding")
    (rule,) = role["rules"]
    assert rule["apiGroups"] == [kserve_rollout.GROUP]
    assert rule["resources"] == [kserve_rollout.PLURAL]
    assert rule["resourceNames"] == [isvc["metadata"]["name"]]
    assert set(rule["verbs"]) == {"get", "patch"}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert [s["kind"] for s in binding["subjects"]] == ["ServiceAccount"]
    assert isvc["apiVersion"] == f"{kserve_rollout.GROUP}/{kserve_rollout.API_VERSION}"
