"""The Trainer's backup directory: found again by a re-run, new for other inputs or settings."""

from components.trainer import run
from components.trainer.hparams import HParams


def test_backup_dir_is_stable_across_reruns_and_changes_with_inputs_or_hparams():
    inputs = {"train_files": ["/root/Transform/transformed_examples/5/Split-train/*"]}
    first = run.backup_dir_for("/root/Trainer/model_run/7", HParams(), inputs)
    assert first.startswith("/root/Trainer/training_backup/")
    assert run.backup_dir_for("/root/Trainer/model_run/9/", HParams(), inputs) == first
    assert run.backup_dir_for("/root/Trainer/model_run/9", HParams(epochs=9), inputs) != first
    remote = run.backup_dir_for("gs://bucket/root/Trainer/model_run/3", HParams(), inputs)
    assert remote.startswith("gs://bucket/root/Trainer/training_backup/")
    other_inputs = {"train_files": ["/root/Transform/transformed_examples/6/Split-train/*"]}
    assert run.backup_dir_for("/root/Trainer/model_run/9", HParams(), other_inputs) != first
