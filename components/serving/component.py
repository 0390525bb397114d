"""ServingModel: between the Evaluator and the Pusher, writes the serving export.

Calibrates the verify threshold from the Evaluator's own metrics (the threshold at the target
FAR, and how many negative pairs measured it), embeds the gallery with the Trainer's model,
and exports serving_default + verify (+ identify) with a calibration.json asset
(components.serving.export). A model the Evaluator did not bless is left alone: the Pusher
will not push it, so no gallery is built.
"""

import logging
import time

import numpy as np
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import example_io
from components.evaluator import results
from components.serving import calibration, export, gallery, gallery_ledger
from components.serving.settings import ServingSettings

_TRAIN = "train"


def write_serving_model(
    trained_dir: str, examples_uri: str, evaluation_uri: str, export_dir: str, settings
) -> dict:
    """Calibrates, builds the gallery and exports; returns the calibration facts."""
    started = time.monotonic()
    metrics = results.candidate_metrics(evaluation_uri)
    facts = calibration.calibrate(metrics, settings)
    entries = None
    if settings.with_gallery:
        records = (
            gallery.records_dataset(settings.gallery)
            if settings.gallery
            else example_io.read_split(examples_uri, _TRAIN)
        )
        if settings.ledger_dir:
            records = gallery_ledger.with_ledger(records, settings.ledger_dir)
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
        max_gallery=settings.max_gallery,
        max_image_pixels=settings.max_image_pixels,
        eval_metrics=metrics,
    )
    threshold = facts["threshold"] if facts["threshold"] is not None else float("nan")
    export.export_serving_model(
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
    serving_model: OutputArtifact[standard_artifacts.Model],
    settings: Parameter[str] = "",
):
    """The serving export: Trainer model + calibrated threshold + gallery (blessed only)."""
    if not blessing.get_int_custom_property("blessed"):
        logging.info("ServingModel: the model is not blessed; nothing to serve")
        return
    write_serving_model(
        path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
        examples.uri,
        evaluation.uri,
        path_utils.serving_model_dir(serving_model.uri),
        ServingSettings.from_json(settings),
    )
