"""Compiles create_pipeline into a Kubeflow Pipelines v2 spec: our image, a GPU Trainer.

`siamese-tfx compile kubeflow --image ... --output pipeline.yaml` builds the same DAG as
`siamese-tfx run` with KubeflowV2DagRunner. Every step runs `python -m
pipeline.container_entrypoint` (TFX's kubeflow_v2_run_executor made to take what the open-source
KFP driver hands it) in the image (see Dockerfile), told each artifact's TFX class with
`--artifact_types`. The baseline is the served model (`--baseline served`), so the default spec
has container executors only, which open-source KFP runs; `--baseline resolver` brings back
TFX's LatestBlessedModelResolver, whose `resolver` executors only Vertex AI runs. The Trainer
asks for GPUs, Transform and Evaluator for CPU and memory. The output is a PipelineSpec
(`.yaml`, what `kfp.Client` and the KFP UI upload) or a PipelineJob (`.json`, as TFX writes it
for Vertex AI Pipelines). Where it runs is a KubeflowTarget (kubeflow_settings.py, checked
when made); the spec patches are in kfp_spec.py.
"""

from components.example_gen.split_modes import Dataset
from pipeline import kfp_spec
from pipeline.kubeflow_settings import KubeflowTarget
from pipeline.settings import PipelineSettings


def build_pipeline(
    settings: PipelineSettings, dataset: Dataset, target: KubeflowTarget, beam_args=()
):
    """create_pipeline with the KFP settings: no ML Metadata config (KFP brings its own)."""
    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        settings,
        root=target.pipeline_root,
        data=dataset,
        serving_dir=target.serving_dir,
        beam_args=target.beam_args(beam_args),
        enable_cache=target.cache,
        inference_service=target.inference_service,
    )
    kfp_spec.give_resources(pipeline, target.resources())
    return pipeline


def compile_pipeline(
    settings: PipelineSettings, dataset: Dataset, target: KubeflowTarget, beam_args=()
) -> dict:
    """Compiles and writes the spec; returns the PipelineJob dict TFX built."""
    target.check_gallery(settings.serving.gallery)
    from tfx import v1 as tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=target.image,
            # Schema 2.1.0 (parameterType, runtimeValue.constant), as the KFP 2 SDK writes it
            # and the open-source KFP 2 backend reads it; Vertex AI takes it too.
            use_pipeline_spec_2_1=True,
        )
    )
    pipeline = build_pipeline(settings, dataset, target, beam_args)
    job = runner.run(pipeline, write_out=False)
    # For readers and Vertex AI: the open-source backend ignores this field (submit.py passes the
    # root with the run), falling back to a minio:// root that TensorFlow cannot write.
    job["pipelineSpec"]["defaultPipelineRoot"] = target.pipeline_root
    kfp_spec.use_our_entrypoint(job["pipelineSpec"], pipeline)
    if target.s3_secret:
        job["platformSpec"] = kfp_spec.s3_secret_platform_spec(
            job["pipelineSpec"], target.s3_secret
        )
    kfp_spec.uncache_served_baseline(job["pipelineSpec"])
    kfp_spec.write_spec(job, target.output)
    return job
