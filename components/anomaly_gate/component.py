"""AnomalyGate: fails the run when ExampleValidator found anomalies, showing its messages."""

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

SCHEMA_DIFF_FILE = "SchemaDiff.pb"  # Written by the stock ExampleValidator per split.


class DataAnomaliesError(RuntimeError):
    """ExampleValidator found anomalies; the message lists them per split and feature."""


def read_anomalies(anomalies_uri: str, splits: list[str]) -> dict[str, anomalies_pb2.Anomalies]:
    found = {}
    for split in splits:
        path = os.path.join(anomalies_uri, f"Split-{split}", SCHEMA_DIFF_FILE)
        proto = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as f:
            proto.ParseFromString(f.read())
        found[split] = proto
    return found


def describe(anomalies: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One line per anomalous feature: split, feature, short and long descriptions."""
    lines = []
    for split, proto in anomalies.items():
        for feature, info in sorted(proto.anomaly_info.items()):
            details = "; ".join(r.description for r in info.reason) or info.description
            lines.append(f"[{split}] feature '{feature}': {info.short_description}: {details}")
        if proto.HasField("dataset_anomaly_info"):
            info = proto.dataset_anomaly_info
            lines.append(f"[{split}] dataset: {info.short_description}: {info.description}")
    return lines


def check_anomalies(anomalies_uri: str, splits: list[str]) -> None:
    """Raises DataAnomaliesError listing every anomaly ExampleValidator wrote for `splits`."""
    problems = describe(read_anomalies(anomalies_uri, splits))
    if problems:
        raise DataAnomaliesError(
            "ExampleValidator found data anomalies:\n  " + "\n  ".join(problems)
        )


@component
def AnomalyGate(  # noqa: N802 (TFX component)
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
):
    """Stops the pipeline before Transform when the data has anomalies."""
    check_anomalies(anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names))
