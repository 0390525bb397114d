"""ModelSelection: each epoch, retrieval metrics on the validation slice; keeps the best epoch.

The metrics are the Evaluator's own (components/evaluator/embedding_metrics.py), leave-one-out
within the slice: MAP@R selects by default, since it scores the whole ranking (P@1 saturates
early and says little about verification); P@1 and R-precision are logged beside it. They go
into the epoch logs as val_<name>, so the epoch line, TensorBoard (validation run) and the History
show them. Training stops after `patience` epochs without improvement (0: never early), and the
best epoch's weights are put back at the end. With a `state_dir` (beside the BackupAndRestore
backup) the best weights survive a killed run, so a resumed run still keeps the best epoch.
"""

import io
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from components.evaluator import embedding_metrics as em
from components.trainer.hparams import SELECTION_METRICS

LOG_PREFIX = "val_"
_WEIGHTS = "best_weights.npz"
_STATE = "selection.json"


class ModelSelection(tf.keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best `metric` on `validation_batches`.

    `validation_batches`: a finite dataset of (images, label ids) batches, the same every pass.
    """

    def __init__(
        self,
        embedding_network: tf.keras.Model,
        validation_batches: tf.data.Dataset,
        metric: str = em.MAP_AT_R,
        patience: int = 0,
        state_dir: str | None = None,
    ):
        super().__init__()
        if metric not in SELECTION_METRICS:
            raise ValueError(f"selection metric must be one of {SELECTION_METRICS}, got {metric}")
        self.embedding_network = embedding_network
        self.validation_batches = validation_batches
        self.metric = metric
        self.patience = patience
        self.state_dir = state_dir
        self.epochs: list[dict] = []  # per epoch (1-based "epoch"): the validation metrics
        self.best_epoch = 0  # 1-based; 0 = none yet
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_early = False
        # No AutoGraph: nothing here branches on tensors, and converting the layers costs seconds.
        self._embed = tf.function(
            lambda images: embedding_network(images, training=False), autograph=False
        )

    def embed_slice(self) -> tuple[np.ndarray, np.ndarray]:
        embeddings, labels = [], []
        for images, batch_labels in self.validation_batches:
            embeddings.append(np.asarray(tf.cast(self._embed(images), tf.float32)))
            labels.append(batch_labels.numpy())
        return np.concatenate(embeddings), np.concatenate(labels)

    def best_value(self) -> float:
        return self.epochs[self.best_epoch - 1][self.metric] if self.best_epoch else -np.inf

    def on_train_begin(self, logs=None):
        self._load_state()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        embeddings, labels = self.embed_slice()
        metrics = em.retrieval_metrics(embeddings, labels, recall_at_k=(1,))
        record = {"epoch": epoch + 1, **{name: float(metrics[name]) for name in SELECTION_METRICS}}
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch + 1] + [record]
        if self.best_epoch > epoch:  # Resumed before a backed-up epoch that is now re-run.
            self.best_epoch, self.best_weights = 0, None
        for name in SELECTION_METRICS:
            logs[LOG_PREFIX + name] = record[name]
        value = record[self.metric]
        # Ties go to the later epoch: a saturated metric (small or easy data) then keeps the
        # model trained longest rather than the first.
        if np.isfinite(value) and value >= self.best_value():
            self.best_epoch = epoch + 1
            self.best_weights = self.model.get_weights()
        elif self.patience and epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True
            self.stopped_early = True
        self._save_state()

    def on_train_end(self, logs=None):
        # Said here, not at the epoch's end: that epoch's line (printed after this callback's
        # on_epoch_end, since it shows the validation metrics) comes first.
        if self.stopped_early:
            print(
                f"stopped early: validation {self.metric} has not improved for "
                f"{self.patience} epochs",
                flush=True,
            )
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            print(
                f"keeping epoch {self.best_epoch} of {len(self.epochs)}: validation "
                f"{self.metric} {self.best_value():.4f}",
                flush=True,
            )
        if self.state_dir and tf.io.gfile.exists(self.state_dir):
            tf.io.gfile.rmtree(self.state_dir)

    def record(self) -> dict:
        """What training.json and summary.json say about the selection."""
        best = self.epochs[self.best_epoch - 1] if self.best_epoch else {}
        return {
            "metric": self.metric,
            "kept_epoch": self.best_epoch or None,
            "kept_validation_metrics": {k: v for k, v in best.items() if k != "epoch"},
            "epochs_run": len(self.epochs),
            "stopped_early": self.stopped_early,
            "patience": self.patience,
            "per_epoch": self.epochs,
        }

    # --- Surviving a killed run (BackupAndRestore resumes the epochs, this the best one) ---

    def _save_state(self):
        if not self.state_dir:
            return
        tf.io.gfile.makedirs(self.state_dir)
        if self.best_epoch == self.epochs[-1]["epoch"]:
            buffer = io.BytesIO()
            np.savez(buffer, *self.best_weights)
            with tf.io.gfile.GFile(os.path.join(self.state_dir, _WEIGHTS), "wb") as f:
                f.write(buffer.getvalue())
        state = {"epochs": self.epochs, "best_epoch": self.best_epoch}
        with tf.io.gfile.GFile(os.path.join(self.state_dir, _STATE), "w") as f:
            json.dump(state, f)

    def _load_state(self):
        state_path = os.path.join(self.state_dir or "", _STATE)
        if not self.state_dir or not tf.io.gfile.exists(state_path):
            return
        with tf.io.gfile.GFile(state_path) as f:
            state = json.load(f)
        self.epochs, self.best_epoch = state["epochs"], state["best_epoch"]
        if self.best_epoch:
            with tf.io.gfile.GFile(os.path.join(self.state_dir, _WEIGHTS), "rb") as f:
                stored = np.load(io.BytesIO(f.read()))
                self.best_weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        logging.info("Model selection resumed: best epoch so far %d", self.best_epoch)
