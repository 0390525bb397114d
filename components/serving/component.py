"""ServingModel: between the Evaluator and the Pusher, writes the model that gets pushed.

Reads the calibrated threshold from the Evaluator's metrics, embeds the gallery with the
Trainer's model, and exports serving_default + verify (+ identify) with a calibration.json
asset (components.serving.serving_model). A model the Evaluator did not bless is left alone:
the Pusher will not push it, so no gallery is built.
"""

import logging
import time

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.reporting import embed
from components.serving import calibration, gallery, serving_model
from components.serving.settings import ServingSettings
from components.transform import preprocessing

_TRAIN, _EVAL = "train", "eval"


def eval_labels(examples_uri: str) -> np.ndarray:
    """Identity names of the eval split, the items the Evaluator's pairs are drawn from."""
    labels = []
    for batch in embed.read_split(examples_uri, _EVAL).batch(embed.BATCH):
        for record in batch.numpy():
            example = tf.train.Example.FromString(record)
            label = example.features.feature[preprocessing.LABEL_KEY].bytes_list.value[0]
            labels.append(label.decode())
    return np.array(labels)


def write_serving_model(
    trained_dir: str, examples_uri: str, evaluation_uri: str, export_dir: str, settings
) -> dict:
    """Calibrates, builds the gallery and exports; returns the calibration facts."""
    started = time.monotonic()
    metrics = calibration.candidate_metrics(evaluation_uri)
    facts = calibration.calibrate(
        metrics, settings, calibration.negative_pairs(eval_labels(examples_uri))
    )
    entries = None
    if settings.with_gallery:
        records = (
            gallery.records_dataset(settings.gallery)
            if settings.gallery
            else embed.read_split(examples_uri, _TRAIN)
        )
        embeddings, identities, note = gallery.build_gallery(
            trained_dir, records, settings.gallery_mode, settings.max_gallery
        )
        entries = (embeddings, identities)
        facts["notes"] += [note] if note else []
    facts.update(
        gallery_size=0 if entries is None else int(len(entries[1])),
        gallery_identities=0 if entries is None else int(np.unique(entries[1]).size),
        gallery_mode=settings.gallery_mode if entries is not None else None,
        gallery_source=(settings.gallery or "train split") if entries is not None else None,
        top_k=settings.top_k,
        max_image_pixels=settings.max_image_pixels,
        eval_metrics=metrics,
    )
    threshold = facts["threshold"] if facts["threshold"] is not None else float("nan")
    serving_model.export_serving_model(
        trained_dir,
        export_dir,
        threshold=threshold,
        max_image_pixels=settings.max_image_pixels,
        calibration=facts,
        gallery=entries,
        top_k=settings.top_k,
    )
    logging.info("ServingModel: calibration and gallery took %.1f s", time.monotonic() - started)
    for note in facts["notes"]:
        logging.warning("ServingModel: %s", note)
    return facts


@component
def ServingModel(  # noqa: N802 (TFX component)
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    served_model: OutputArtifact[standard_artifacts.Model],
    settings: Parameter[str] = "",
):
    """The pushed model: Trainer model + calibrated threshold + gallery (blessed models only)."""
    if not blessing.get_int_custom_property("blessed"):
        logging.info("ServingModel: the model is not blessed; nothing to serve")
        return
    write_serving_model(
        path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
        examples.uri,
        evaluation.uri,
        path_utils.serving_model_dir(served_model.uri),
        ServingSettings.from_json(settings),
    )
