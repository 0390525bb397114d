"""create_pipeline: the TFX DAG from raw images to a TF Serving model directory."""

import dataclasses

from tfx.components import (
    ExampleValidator,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import pusher_pb2, trainer_pb2

from components.anomaly_gate.component import AnomalyGate
from components.baseline.choice import NONE, create_baseline
from components.evaluator.component import Evaluator
from components.evaluator.eval_config import create_eval_config
from components.example_gen.component import create_example_gen
from components.example_gen.split_modes import Dataset
from components.reporting.component import EmbeddingReport
from components.serving.component import ServingModel
from components.serving.pusher import Pusher
from pipeline import configs
from pipeline.settings import PipelineSettings


def create_pipeline(
    settings: PipelineSettings,
    *,
    root: str,
    data: Dataset,
    serving_dir: str,
    beam_args: list[str] | tuple = (),
    metadata_connection_config=None,
    enable_cache: bool = True,
    inference_service: str = "",
) -> Pipeline:
    """The DAG over `data`, its artifacts under `root`, pushing into `serving_dir`; with
    `inference_service` (NAMESPACE/NAME, Kubeflow), a last step rolls KServe onto the push.

    Every component reads its part of `settings`; the runners add where things go and how
    Beam runs (local_runner.py, kubeflow_runner.py).
    """
    hparams, serving = settings.hparams, settings.serving
    example_gen = create_example_gen(data)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    # SchemaGen infers over every split (no exclude_splits), so a label domain it infers also
    # lists the eval identities that an identity split keeps out of train: ExampleValidator and
    # AnomalyGate accept them (test_pipeline_e2e runs an identity split end to end).
    schema_gen = SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])

    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=configs.PREPROCESSING_FN,
        custom_config={"image_size": hparams.image_size, "channels": hparams.channels},
        # Nothing reads Transform's own statistics: StatisticsGen already has the raw ones,
        # and TFDV over every transformed pixel cost seconds.
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)

    # The validation slice the Trainer selects its epoch on is held back like the eval split.
    trainer_hparams = dataclasses.replace(hparams, validation_by=data.split_by)
    trainer = Trainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=trainer_hparams.to_config(),
    )
    report = EmbeddingReport(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        max_examples=settings.report.report_examples,
    )
    # The served baseline (default), the latest blessed model, or none; a first run has none
    # and is judged by the thresholds only.
    baseline_nodes, baseline_model = create_baseline(settings.baseline, serving_dir)
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_model,
        eval_config=create_eval_config(
            settings.blessing,
            change_threshold=settings.baseline != NONE,
            reference_image=(hparams.image_size, hparams.channels),
            far_targets=serving.far_targets(),
        ),
        example_splits=["eval"],
    )
    # The serving export: the Trainer's model plus the threshold calibrated by the Evaluator
    # and a gallery.
    serving_model = ServingModel(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        # The ledger of people enrolled or forgotten in the serving dir since it was trained.
        settings=dataclasses.replace(serving, ledger_dir=serving_dir).to_json(),
    )
    pusher = Pusher(
        model=serving_model.outputs["serving_model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    )
    rollout = []
    if inference_service:
        from pipeline.rollout_step import KServeRollout

        rollout = [
            KServeRollout(
                pushed_model=pusher.outputs["pushed_model"],
                serving_dir=serving_dir,
                inference_service=inference_service,
            )
        ]
    return Pipeline(
        pipeline_name=settings.name,
        pipeline_root=root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            anomaly_gate,
            transform,
            trainer,
            report,
            *baseline_nodes,
            evaluator,
            serving_model,
            pusher,
            *rollout,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_args),
    )
