"""Tests for eval_config: the EvalConfig built and how TFMA resolves its thresholds.

Real TFMA / TFX Evaluator runs with these configs are in evaluator_e2e_test.py.
"""

import json

import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components.evaluator import embedding_metrics as em
from components.evaluator.blessing import Blessing
from components.evaluator.eval_config import create_eval_config, gating_metric_names


def gates(lower=None, regression=None, floor=None, metric="precision_at_1") -> Blessing:
    """A Blessing with only the gates given (floor: its margin)."""
    return Blessing(
        gating_metric=metric,
        lower_bound=lower,
        max_regression=regression,
        floor=floor is not None,
        floor_margin=0.02 if floor is None else floor,
    )


def _value(lower=None, upper=None) -> tfma.MetricThreshold:
    threshold = tfma.MetricThreshold()
    if lower is not None:
        threshold.value_threshold.lower_bound.value = lower
    if upper is not None:
        threshold.value_threshold.upper_bound.value = upper
    return threshold


def _emitted_keys(config: tfma.EvalConfig) -> set:
    """Every MetricKey the config's computations emit (what thresholds must match)."""
    computations = metric_specs.to_computations(list(config.metrics_specs), eval_config=config)
    return {key for computation in computations for key in computation.keys}


def _thresholds(config: tfma.EvalConfig) -> dict:
    return metric_specs.metric_thresholds_from_metrics_specs(
        config.metrics_specs, eval_config=config
    )


def test_positional_lower_bound_gates_precision_at_1():
    config = create_eval_config(gates(0.7))
    assert config == create_eval_config(Blessing(lower_bound=0.7, max_regression=None, floor=False))
    (spec,) = config.model_specs
    assert (spec.name, spec.label_key, spec.prediction_key) == ("", "label", "embedding")
    (metric,) = config.metrics_specs[0].metrics
    assert metric.class_name == "EmbeddingMetrics"
    assert metric.module == "components.evaluator.tfma_embedding_metrics"
    assert json.loads(metric.config) == {
        "name": "precision_at_1",
        "recall_at_k": [1, 5, 10],
        "max_pairs": 1_000_000,
        "seed": 0,
        "far_targets": [0.001, 0.01],
    }
    assert metric.threshold == _value(lower=0.7)


def test_thresholds_resolve_to_emitted_keys():
    config = create_eval_config(
        gates(0.4, 0.01, metric="map_at_r"),
        with_baseline=True,
        extra_thresholds={"eer": _value(upper=0.2), "val_at_far_1e-3": _value(lower=0.5)},
    )
    assert [(s.name, s.is_baseline) for s in config.model_specs] == [
        ("candidate", False),
        ("baseline", True),
    ]
    # What both tfma.run_model_analysis and the TFX Evaluator do before evaluating two models.
    config = tfma.utils.update_eval_config_with_defaults(config, has_baseline=True)
    thresholds = _thresholds(config)
    emitted = _emitted_keys(config)
    gated = metric_types.MetricKey("map_at_r", model_name="candidate")
    assert [t for _, t in thresholds[gated]] == [_value(lower=0.4).value_threshold]
    (change,) = [t for _, t in thresholds[gated.make_diff_key()]]
    assert change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert change.absolute.value == -0.01
    assert metric_types.MetricKey("eer", model_name="candidate") in thresholds
    # Every threshold names a key that the single combiner emits (diffs come from TFMA).
    for key in thresholds:
        assert key._replace(is_diff=False) in emitted, key
    assert {k.name for k in emitted if k.model_name == "baseline"} == set(em.metric_names())


def test_metrics_spec_thresholds_do_not_match_post_export_keys():
    """Why extra_thresholds uses MetricConfigs: MetricsSpec.thresholds keys carry
    example_weighted=None, the emitted keys example_weighted=False ("Metric not found")."""
    config = create_eval_config(gates(0.5))
    config.metrics_specs[0].thresholds["map_at_r"].CopyFrom(_value(lower=0.1))
    (spec_key,) = [k for k in _thresholds(config) if k.name == "map_at_r"]
    assert spec_key.example_weighted is None
    assert spec_key not in _emitted_keys(config)
    assert spec_key._replace(example_weighted=False) in _emitted_keys(config)


def test_first_run_without_baseline_drops_the_change_threshold():
    """The TFX Evaluator passes has_baseline=False, rubber_stamp=True when no baseline exists."""
    config = create_eval_config(gates(0.3, 0.01), with_baseline=True)
    config = tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=False, rubber_stamp=True
    )
    assert [s.name for s in config.model_specs] == [""]
    assert list(_thresholds(config)) == [metric_types.MetricKey("precision_at_1")]


def test_gating_metric_names():
    names = gating_metric_names()
    assert "precision_at_1" in names and "map_at_r" in names and "val_at_far_1e-2" in names
    assert not {"eer", "threshold_at_far_1e-3", "mean_positive_distance", "distance_gap"} & set(
        names
    )
    assert "recall_at_3" in gating_metric_names(recall_at_k=(3,))


@pytest.mark.parametrize(
    "metric, kwargs",
    [
        ("precision_at_1", {"extra_thresholds": {"recall_at_3": _value(lower=0.1)}}),
        ("precision_at_1", {"extra_thresholds": {"precision_at_1": _value(lower=0.1)}}),
        ("val_at_far_1e-3", {"far_targets": (0.05,)}),  # The gating metric is not emitted...
        ("recall_at_1", {"recall_at_k": (5,)}),  # ... nor here.
    ],
)
def test_rejects_options_the_gates_cannot_use(metric, kwargs):
    with pytest.raises(ValueError):
        create_eval_config(gates(0.5, metric=metric), **kwargs)


def test_the_blessing_checks_its_own_values():
    """What the gates may be is the Blessing's rule, checked once, when it is made."""
    from components.settings import SettingError

    for bad in ({}, {"lower": 0.5, "metric": "eer"}, {"lower": 0.5, "regression": -0.01}):
        with pytest.raises(SettingError):
            gates(**bad)


def test_regression_only_gate():
    config = create_eval_config(gates(regression=0.02, metric="roc_auc"), with_baseline=True)
    threshold = config.metrics_specs[0].metrics[0].threshold
    assert not threshold.HasField("value_threshold")
    assert threshold.change_threshold.absolute.value == -0.02


def test_floor_gates_the_gain_over_raw_pixels_with_the_margin():
    config = create_eval_config(gates(0.5, floor=0.02), reference_image=(28, 1))
    gate, floor = config.metrics_specs[0].metrics
    assert json.loads(floor.config)["name"] == em.MAP_AT_R_GAIN
    assert floor.threshold == _value(lower=0.02)
    for metric in (gate, floor):  # One shared combiner: the same options on both.
        options = json.loads(metric.config)
        assert (options["reference_image_size"], options["reference_channels"]) == (28, 1)
    assert {em.REFERENCE_MAP_AT_R, em.MAP_AT_R_GAIN} <= {k.name for k in _emitted_keys(config)}
    thresholds = _thresholds(config)
    assert any(key.name == em.MAP_AT_R_GAIN for key in thresholds)
    # The floor alone may gate; without the image size there is no reference to compare with.
    only_floor = create_eval_config(gates(floor=0.0), reference_image=(16, 3))
    assert [json.loads(m.config)["name"] for m in only_floor.metrics_specs[0].metrics] == [
        "precision_at_1",
        em.MAP_AT_R_GAIN,
    ]
    assert not only_floor.metrics_specs[0].metrics[0].HasField("threshold")
    with pytest.raises(ValueError, match="reference_image"):
        create_eval_config(gates(0.5, floor=0.02))
