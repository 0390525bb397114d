"""The learning-rate schedule: linear warm-up, cosine decay, and the constant rate."""

import numpy as np

from components.trainer import schedule
from components.trainer.hparams import HParams


def test_warmup_cosine_rises_linearly_then_decays_to_zero():
    warmup_cosine = schedule.WarmupCosine(peak=1e-2, total_steps=100, warmup_steps=10)
    rates = np.array([float(warmup_cosine(step)) for step in range(120)])
    np.testing.assert_allclose(rates[:10], 1e-2 * np.arange(1, 11) / 10, rtol=1e-6)
    np.testing.assert_allclose(rates[10], 1e-2, rtol=1e-6)
    assert np.all(np.diff(rates[10:100]) < 0)
    np.testing.assert_allclose(rates[55], 0.5e-2, rtol=1e-5)  # halfway through the decay
    np.testing.assert_allclose(rates[100:], 0.0, atol=1e-12)
    assert schedule.WarmupCosine(**warmup_cosine.get_config())(42) == warmup_cosine(42)


def test_learning_rate_follows_the_hyperparameters():
    constant = HParams(lr_schedule="constant", learning_rate=3e-4)
    assert schedule.learning_rate(constant, 50) == 3e-4
    cosine = schedule.learning_rate(HParams(epochs=4, warmup_epochs=0.5, learning_rate=1e-3), 50)
    assert (cosine.total_steps, cosine.warmup_steps, cosine.peak) == (200, 25, 1e-3)
