"""PipelineSettings: every validated setting that create_pipeline hands to the components.

One frozen object from the command line (or a test, or a notebook) to the DAG: the Trainer's
HParams, the Evaluator's Blessing, ServingModel's ServingSettings, the EmbeddingReport's
ReportSettings, and which baseline the Evaluator compares with. Where the data is and how it
splits is the Dataset (components/example_gen/split_modes.py); where artifacts go is the
runner's business. Light: no TensorFlow, so options are checked before anything heavy.
"""

import dataclasses

from components.baseline.choice import BASELINES, SERVED
from components.evaluator.blessing import Blessing
from components.reporting.settings import ReportSettings
from components.serving.settings import ServingSettings
from components.settings import check_fields, setting
from components.trainer.hparams import HParams
from pipeline import configs


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    hparams: HParams = dataclasses.field(default_factory=HParams)
    blessing: Blessing = dataclasses.field(default_factory=Blessing)
    serving: ServingSettings = dataclasses.field(default_factory=ServingSettings)
    report: ReportSettings = dataclasses.field(default_factory=ReportSettings)
    baseline: str = setting(
        SERVED,
        "what a new model is compared with: served (the newest model under --serving-dir, any "
        "KFP), resolver (TFX's latest blessed model: Vertex AI Pipelines only, open-source KFP "
        "refuses its resolver executors) or none (--lower-bound alone)",
        choices=BASELINES,
        command_line=False,
    )
    name: str = setting(
        configs.PIPELINE_NAME, "the pipeline's name", flag="--pipeline-name", command_line=False
    )

    def __post_init__(self):
        check_fields(self)
