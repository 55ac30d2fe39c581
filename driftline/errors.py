"""Failures a user acts on. Each carries one readable paragraph saying what and why."""

from __future__ import annotations


class PipelineFailure(RuntimeError):
    """The pipeline stopped on purpose: bad data or a failed gate. Nothing was registered."""

    def __init__(self, stage: str, paragraph: str):
        super().__init__(f"{stage}: {paragraph}")
        self.stage = stage
        self.paragraph = paragraph


class ValidationFailed(PipelineFailure):
    def __init__(self, paragraph: str):
        super().__init__("validation", paragraph)


class GatesFailed(PipelineFailure):
    def __init__(self, paragraph: str):
        super().__init__("gates", paragraph)
