"""A data check's outcome: the line it writes in the validation report (and on the model card)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    column: str | None = None
