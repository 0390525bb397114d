"""The anomaly gate on anomalies that TFDV really computes."""

import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tfx.components.example_validator import executor as validator_executor

from components.anomaly_gate import component as anomaly_gate


def write_anomalies(root, split, anomalies):
    directory = os.path.join(root, f"Split-{split}")
    os.makedirs(directory)
    path = os.path.join(directory, validator_executor.DEFAULT_FILE_NAME)
    with open(path, "wb") as f:
        f.write(anomalies.SerializeToString())


def test_clean_data_passes_and_missing_label_fails(tmp_path):
    good = pd.DataFrame({"image": [b"a", b"b", b"c"], "label": [b"x", b"y", b"x"]})
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(good))
    bad = pd.DataFrame({"image": [b"a", b"b"]})
    write_anomalies(
        tmp_path,
        "train",
        tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(good), schema),
    )
    write_anomalies(
        tmp_path,
        "eval",
        tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(bad), schema),
    )

    anomaly_gate.check_anomalies(str(tmp_path), ["train"])
    with pytest.raises(anomaly_gate.DataAnomaliesError, match=r"\[eval\] feature 'label'"):
        anomaly_gate.check_anomalies(str(tmp_path), ["train", "eval"])
