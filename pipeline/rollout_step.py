"""KServeRollout: the step after the Pusher that rolls a KServe InferenceService onto the newest
version in the serving dir (pipeline.kserve_rollout says how and why a patch does it).

Compiled into the Kubeflow spec only with `--inference-service NAMESPACE/NAME`. It reads the
newest complete version from the serving dir rather than the Pusher's properties, so a run that
pushed nothing patches the version already served, which changes nothing.
"""

import logging

from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.baseline.served_baseline import newest_version
from pipeline import kserve_rollout


def roll_out(serving_dir: str, inference_service: str, api_client=None) -> str | None:
    """Patches NAMESPACE/NAME onto the newest version in serving_dir; returns that version."""
    newest = newest_version(serving_dir)
    if newest is None:
        logging.info("KServeRollout: %s holds no version yet; nothing to roll out", serving_dir)
        return None
    version = newest.rstrip("/").rsplit("/", 1)[-1]
    namespace, name = inference_service.split("/", 1)
    kserve_rollout.apply_rollout(namespace, name, version, api_client)
    logging.info("KServeRollout: InferenceService %s now at version %s", inference_service, version)
    return version


@component
def KServeRollout(  # noqa: N802 (TFX component)
    pushed_model: InputArtifact[standard_artifacts.PushedModel],
    serving_dir: Parameter[str],
    inference_service: Parameter[str],
):
    """After the Pusher (its output orders this step; its contents are not read)."""
    del pushed_model
    from pipeline import filesystems

    filesystems.register()
    roll_out(serving_dir, inference_service)
