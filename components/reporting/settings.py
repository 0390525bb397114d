"""What the EmbeddingReport draws from: its settings, light enough for the command line."""

import dataclasses

from components.settings import check_fields, setting


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """The EmbeddingReport's settings; each field's range and help live in the field."""

    report_examples: int = setting(
        5000, "eval examples embedded for the figures and projector", low=1
    )

    def __post_init__(self):
        check_fields(self)
