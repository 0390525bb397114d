"""The learning-rate schedule: Adam's rate, constant or a linear warm-up then cosine decay."""

import math

import tensorflow as tf

from components.trainer.hparams import HParams

keras = tf.keras


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from peak / warmup_steps to `peak`, then cosine decay to 0 at total_steps."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(min(warmup_steps, total_steps))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(self.warmup_steps)
        warming = self.peak * (step + 1.0) / max(warmup, 1.0)
        progress = tf.clip_by_value((step - warmup) / max(self.total_steps - warmup, 1.0), 0, 1)
        decaying = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < warmup, warming, decaying)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def learning_rate(hparams: HParams, steps_per_epoch: int):
    """Adam's learning rate: a constant, or WarmupCosine over the whole run."""
    if hparams.lr_schedule == "constant":
        return hparams.learning_rate
    total = hparams.epochs * steps_per_epoch
    warmup = round(hparams.warmup_epochs * steps_per_epoch)
    return WarmupCosine(hparams.learning_rate, total, warmup)
