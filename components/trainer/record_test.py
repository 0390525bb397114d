"""training.json: written after training, read back as written; None for a run without one."""

import numpy as np

from components.trainer import fit, record, validation
from components.trainer.fit_test import TINY


def test_the_training_record_reads_back_as_written(tmp_path):
    result = fit.TrainResult(
        embedding_network=None,
        history={},
        epochs_run=3,
        train_seconds=12.345,
        wall_seconds=20.0,
        images_per_second=100.0,
        satisfied_epoch=2,
    )
    split = validation.TrainingData(None, None, np.ones(4, bool), 32, None)
    written = record.write_training_record(str(tmp_path), result, split, TINY)
    assert written["validation_slice"] is None and written["train_seconds"] == 12.3
    assert "under validation_min_train_images" in written["no_validation_slice"]
    assert (written["epochs_run"], written["satisfied_epoch"]) == (3, 2)
    assert record.read_training_record(str(tmp_path)) == written
    assert record.read_training_record(str(tmp_path / "elsewhere")) is None
