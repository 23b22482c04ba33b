"""What-if runs (``radbench predict --skip``): the pipeline without some steps, next to the full pipeline, said in
words a student reads, and always marked as not the model's intended input."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from radbench.inference.pipeline import Pipeline, Prediction

NOT_INTENDED = "not the model's intended input"


def what_if(pipeline: Pipeline, path: str | Path, frame: int | None,
            skip: Collection[str]) -> tuple[Prediction, Prediction]:
    """The full pipeline's prediction and the one without ``skip``, on the same frame."""
    return pipeline.run(path, frame=frame), pipeline.run(path, frame=frame, skip=skip)


def comparison(full: Prediction, changed: Prediction, asked: Collection[str]) -> str:
    """``PNEUMONIA 8 % -> 63 % without equalize (not the model's intended input)``, for the card's positive label
    (else the full run's label); says so when the file has none of the ``asked`` steps to leave out."""
    if not changed.skipped:
        return f"nothing to skip: this run has no {' or '.join(asked)} step (the full pipeline ran)"
    label = full.positive_label or full.label
    before, after = full.probabilities[label], changed.probabilities[label]
    return f"{label} {before * 100:.0f} % -> {after * 100:.0f} % without {', '.join(changed.skipped)} ({NOT_INTENDED})"


def what_if_record(full: Prediction, changed: Prediction) -> dict:
    """What a JSON line adds for a what-if run: the skipped steps and the full pipeline's probabilities."""
    return {"skipped": list(changed.skipped), "intended_input": not changed.skipped,
            "full_pipeline_probabilities": dict(full.probabilities)}
