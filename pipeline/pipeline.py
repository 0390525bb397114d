"""create_pipeline: the TFX DAG from raw images to a TF Serving model directory."""

from tfx.components import (
    ExampleValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import pusher_pb2, trainer_pb2

from components.baseline.choice import NONE, create_baseline
from components.baseline.evaluator import Evaluator
from components.evaluator.blessing import DEFAULT_BLESSING, Blessing
from components.evaluator.eval_config import create_eval_config
from components.example_gen import sources
from components.example_gen.component import create_example_gen
from components.reporting.component import EmbeddingReport
from components.serving.component import ServingModel
from components.serving.settings import ServingSettings
from components.validation.anomaly_gate import AnomalyGate
from pipeline import configs


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_dir: str,
    data_format: str,
    serving_dir: str,
    hparams: dict,
    blessing: Blessing = DEFAULT_BLESSING,
    baseline: str = configs.DEFAULT_BASELINE,
    report_examples: int = configs.DEFAULT_REPORT_EXAMPLES,
    eval_fraction: float = configs.DEFAULT_EVAL_FRACTION,
    split_by: str = "",
    serving: ServingSettings | None = None,
    beam_pipeline_args: list[str] | None = None,
    metadata_connection_config=None,
    enable_cache: bool = True,
) -> Pipeline:
    serving = serving or ServingSettings()
    # "identity" (open set) or "image"; "" = the data format's default (split_modes.py).
    split_by = sources.check_split_by(data_format, split_by)
    example_gen = create_example_gen(data_dir, data_format, eval_fraction, split_by)
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

    image_config = {"image_size": hparams["image_size"], "channels": hparams["channels"]}
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=configs.PREPROCESSING_FN,
        custom_config=image_config,
        # Nothing reads Transform's own statistics: StatisticsGen already has the raw ones,
        # and TFDV over every transformed pixel cost seconds.
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)

    trainer = Trainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        # The validation slice the Trainer selects its epoch on is held back like the eval split.
        custom_config={**hparams, "validation_by": split_by},
    )
    report = EmbeddingReport(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        max_examples=report_examples,
    )
    # The served model (default), the latest blessed one, or none; a first run has none and is
    # judged by lower_bound only.
    baseline_nodes, baseline_model = create_baseline(baseline, serving_dir)
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_model,
        eval_config=create_eval_config(
            blessing.lower_bound,
            gating_metric=blessing.gating_metric,
            max_regression=None if baseline == NONE else blessing.max_regression,
            floor_margin=blessing.floor_margin,
            reference_image=(hparams["image_size"], hparams["channels"]),
            far_targets=serving.far_targets(),
        ),
        example_splits=["eval"],
    )
    # The pushed model: the Trainer's plus the threshold calibrated by the Evaluator and a gallery.
    serving_model = ServingModel(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        settings=serving.to_json(),
    )
    pusher = Pusher(
        model=serving_model.outputs["served_model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    )
    return Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
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
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
