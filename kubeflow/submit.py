"""Submits a compiled siamese-tfx pipeline to a Kubeflow Pipelines endpoint and starts a run.

    python kubeflow/submit.py --package pipeline.yaml --host https://KFP_HOST/pipeline \
        [--experiment siamese-tfx] [--run-name NAME] [--namespace NS] [--wait 7200]

`--package` is what `siamese-tfx compile kubeflow --output ...` wrote: a PipelineSpec (.yaml) or
a PipelineJob (.json, converted here since kfp.Client reads YAML only). The run's pipeline root
is the one compiled in, unless --pipeline-root overrides it: KFP's own default is a minio://
path, which TensorFlow cannot write. Credentials are kfp.Client's usual ones (in-cluster service
account token, KF_PIPELINES_SA_TOKEN_PATH, or --cookies for a Dex login); none are stored here.
"""

import argparse
import json
import os
import sys
import tempfile


def load_package(path: str) -> tuple[dict, str | None]:
    """(PipelineSpec dict, pipeline root compiled into it) of a .yaml or .json package."""
    import yaml

    with open(path) as f:
        if path.endswith(".json"):
            job = json.load(f)
            spec = job["pipelineSpec"]
            root = spec.get("defaultPipelineRoot") or job.get("runtimeConfig", {}).get(
                "gcsOutputDirectory"
            )
            return spec, root
        # The PipelineSpec, then (with `--s3-secret`) the Kubernetes PlatformSpec.
        spec = next(doc for doc in yaml.safe_load_all(f) if doc)
    return spec, spec.get("defaultPipelineRoot")


def yaml_package(path: str, spec: dict, directory: str) -> str:
    """A path kfp.Client accepts (.yaml/.yml); a JSON PipelineJob is rewritten as its spec."""
    import yaml

    if path.endswith((".yaml", ".yml")):
        return path
    converted = os.path.join(directory, os.path.splitext(os.path.basename(path))[0] + ".yaml")
    with open(converted, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=True)
    return converted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--package", required=True, help="compiled pipeline (.yaml or .json)")
    parser.add_argument(
        "--host",
        default=None,
        help="KFP API endpoint, e.g. http://localhost:8080 after `kubectl port-forward -n "
        "kubeflow svc/ml-pipeline-ui 8080:80`; none: the in-cluster default",
    )
    parser.add_argument("--namespace", default=None, help="profile namespace (multi-user KFP)")
    parser.add_argument("--experiment", default="siamese-tfx", help="(default %(default)s)")
    parser.add_argument("--run-name", default=None, help="default: the package name and time")
    parser.add_argument(
        "--pipeline-root", default=None, help="override the compiled root (gs:// or s3://)"
    )
    parser.add_argument("--service-account", default=None, help="Kubernetes SA for the pods")
    parser.add_argument("--no-cache", action="store_true", help="run every step again")
    parser.add_argument("--cookies", default=None, help="session cookie for a Dex-fronted KFP")
    parser.add_argument(
        "--wait", type=int, default=0, metavar="SECONDS", help="wait for the run to finish"
    )
    return parser


def main(argv: list[str] | None = None, client_factory=None) -> int:
    args = build_parser().parse_args(argv)
    spec, compiled_root = load_package(args.package)
    pipeline_root = args.pipeline_root or compiled_root
    if not pipeline_root or pipeline_root.startswith("minio://"):
        print(
            f"submit: pipeline root {pipeline_root!r}: give --pipeline-root gs://... or s3://... "
            "(TensorFlow cannot write minio://)",
            file=sys.stderr,
        )
        return 2
    if client_factory is None:
        import kfp

        client_factory = kfp.Client
    client_args = {"host": args.host, "cookies": args.cookies}
    if args.namespace:  # kfp.Client's own default is 'kubeflow'.
        client_args["namespace"] = args.namespace
    client = client_factory(**client_args)
    with tempfile.TemporaryDirectory() as tmp:
        result = client.create_run_from_pipeline_package(
            yaml_package(args.package, spec, tmp),
            arguments={},
            run_name=args.run_name,
            experiment_name=args.experiment,
            namespace=args.namespace,
            pipeline_root=pipeline_root,
            enable_caching=False if args.no_cache else None,
            service_account=args.service_account,
        )
    print(f"Started run {result.run_id} of {spec['pipelineInfo']['name']} (root {pipeline_root})")
    if args.wait:
        state = result.wait_for_run_completion(timeout=args.wait).state
        print(f"Run {result.run_id} finished: {state}")
        return 0 if str(state).upper() == "SUCCEEDED" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
