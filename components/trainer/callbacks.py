"""The Keras callbacks of a training run: the epoch line on stdout, and the order `fit` runs
them in."""

import time

import tensorflow as tf

from components.trainer.selection import LOG_PREFIX

keras = tf.keras


class EpochLogger(keras.callbacks.Callback):
    """One line per epoch on stdout (loss, share of active triplets or pairs, validation loss and
    retrieval metrics, learning rate, speed).

    Also puts `learning_rate` into the epoch logs, so the TensorBoard callback after it and the
    History get it, and records the training time of each epoch without its evaluation.
    """

    def __init__(
        self, epochs: int, steps_per_epoch: int, images_per_step: int, terms: str = "triplets"
    ):
        super().__init__()
        self.epochs = epochs
        self.terms = terms  # what the loss's active share counts (strategies.py)
        self.images_per_epoch = steps_per_epoch * images_per_step
        self.train_seconds: list[float] = []
        self._start = self._end = 0.0

    def current_learning_rate(self) -> float:
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            # The rate of the step just taken.
            rate = rate(tf.maximum(optimizer.iterations - 1, 0))
        return float(tf.keras.backend.get_value(rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._end = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self._end <= self._start:  # No evaluation this epoch.
            self._end = time.perf_counter()
        seconds = self._end - self._start
        self.train_seconds.append(seconds)
        logs["learning_rate"] = self.current_learning_rate()
        line = (
            f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
            f"active {self.terms} {percent(logs.get('active_triplets', float('nan')))}"
        )
        if "val_loss" in logs:
            line += (
                f", validation loss {logs['val_loss']:.4f}"
                f" (active {percent(logs.get('val_active_triplets', float('nan')))})"
            )
        if LOG_PREFIX + "map_at_r" in logs:
            line += (
                f", MAP@R {logs[LOG_PREFIX + 'map_at_r']:.4f}"
                f", P@1 {logs[LOG_PREFIX + 'precision_at_1']:.4f}"
            )
        line += (
            f", lr {logs['learning_rate']:.2e}, {seconds:.1f} s, "
            f"{self.images_per_epoch / max(seconds, 1e-9):.0f} images/s"
        )
        # Printed like Keras's own verbose=2 epoch line (which this replaces), so it shows in
        # the CLI, the Trainer's log and a notebook whatever the logging set-up.
        print(line, flush=True)


def percent(share: float) -> str:
    """A share as a percentage; one under 0.1% but not 0 keeps two significant digits, so the
    epoch line never shows a loss still teaching as 0.0% (satisfied.py stops at exactly 0)."""
    if 0 < share < 0.001:
        return f"{100 * share:.2g}%"
    return f"{100 * share:.1f}%"


def epoch_callbacks(selection, logger, stopper, log_dir, backup_dir, extra) -> list:
    """In order: model selection first (the epoch line, TensorBoard and the History show its
    metrics), the epoch line, the stop when satisfied, TensorBoard, the backup, then `extra`."""
    callbacks = [selection] if selection else []
    callbacks.append(logger)
    if stopper:
        callbacks.append(stopper)
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    if backup_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
    return callbacks + list(extra)
