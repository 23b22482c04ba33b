"""The one stage runner and its spec: what each stage is given, what is timed, cancel between stages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from radbench.inference.backends import get_backend
from radbench.inference.backends.contract import STAGES
from radbench.inference.errors import Cancelled
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.preprocessing import PreprocessSpec, preprocess
from radbench.inference.timing import StageClock

CHEST = Path(__file__).resolve().parent.parent / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"
SPEC = PreprocessSpec(2.0, -3.0, 40.0, 400.0, True, (7, 9), (0.5,), (0.25,), 3)


def recording_backend(calls: list) -> SimpleNamespace:
    """Stages that note ``(stage, arguments, cancel)`` and hand the image on with the stage's name appended."""
    def stage(name):
        def run(image, *arguments, cancel=None):
            calls.append((name, arguments, cancel))
            return [*image, name]
        return run
    return SimpleNamespace(**{name: stage(name) for name in STAGES})


def test_each_stage_gets_the_previous_output_and_its_own_arguments_from_the_spec():
    calls, cancel = [], lambda: False
    assert preprocess([], SPEC, recording_backend(calls), cancel=cancel) == list(STAGES)
    assert calls == [("rescale", (2.0, -3.0), cancel), ("window", (40.0, 400.0, True), cancel),
                     ("equalize", (), cancel), ("resize", (7, 9), cancel), ("normalize", ((0.5,), (0.25,), 3), cancel)]


def test_each_stage_is_timed_once_in_order_and_a_spec_without_equalization_skips_it():
    clock = StageClock()
    out = preprocess([], replace(SPEC, equalize=False), recording_backend([]), clock=clock)
    assert out == ["rescale", "window", "resize", "normalize"]
    assert [name for name, _ in clock.timings().stages] == out


def test_cancel_is_checked_before_each_stage_and_stops_before_the_next_one():
    calls, asked = [], []

    def cancel():
        asked.append(1)
        return len(asked) > 2  # the third check, before equalize, says stop

    clock = StageClock()
    with pytest.raises(Cancelled):
        preprocess([], SPEC, recording_backend(calls), clock=clock, cancel=cancel)
    assert [name for name, _, _ in calls] == ["rescale", "window"]
    assert [name for name, _ in clock.timings().stages] == ["rescale", "window"]


def test_the_card_and_the_scan_make_the_spec():
    scan, card = load_scan(CHEST), Model().card
    spec = PreprocessSpec.from_card(card, scan)
    preset = scan.window_presets[0]
    assert spec == PreprocessSpec(scan.rescale_slope, scan.rescale_intercept, preset.center, preset.width, True,
                                  (card.input_height, card.input_width), card.mean, card.std, card.input_channels,
                                  card.equalize)
    own_range = PreprocessSpec.for_scan(replace(scan, window_presets=()), size=(8, 8), mean=(0.0,), std=(1.0,),
                                        channels=1)
    assert (own_range.window_center, own_range.window_width, own_range.size) == (None, None, (8, 8))


def test_a_real_backend_through_the_runner_gives_the_model_input():
    scan = load_scan(CHEST)
    tensor = preprocess(scan.grey_frame(), PreprocessSpec.from_card(Model().card, scan), get_backend("vectorized"))
    assert tensor.shape == (1, 1, 128, 128) and tensor.dtype == np.float32
