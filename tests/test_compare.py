"""Comparing backends on one scan: interleaved repeats, medians, equivalence, progress and cancel."""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file

from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.benchmarking.compare import TENSOR_TOLERANCE, compare_backends
from radbench.inference.errors import Cancelled
from radbench.inference.loading import load_scan
from radbench.inference.model import Model


@pytest.fixture(scope="module")
def model():
    return Model()


@pytest.fixture(scope="module")
def scan():
    return load_scan(get_testdata_file("CT_small.dcm"))


def test_every_backend_gets_medians_per_stage_and_they_agree(model, scan):
    calls = []
    comparison = compare_backends(model, scan, repeats=2, progress=lambda *a: calls.append(a))
    assert tuple(comparison.results) == BACKEND_NAMES
    for name, result in comparison.results.items():
        assert result.repeats == 2 and result.last.backend == name
        assert list(result.median_ms) == ["rescale", "window", "equalize", "resize", "normalize", "infer",
                                          "postprocess", "heatmap"]  # decoded once by the caller: no decode
        assert result.total_ms == pytest.approx(sum(result.median_ms.values()))
    assert comparison.equivalent and comparison.max_abs_diff <= TENSOR_TOLERANCE
    # 3 rounds (warm-up + 2) x 3 backends, interleaved, then a final call
    assert [c[2] for c in calls[:4]] == [*BACKEND_NAMES, BACKEND_NAMES[0]]
    assert calls[-1] == (9, 9, "")


def test_cancel_stops_the_comparison(model, scan):
    with pytest.raises(Cancelled):
        compare_backends(model, scan, repeats=3, cancel=lambda: True)
