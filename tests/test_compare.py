"""Comparing backends on one scan: interleaved repeats, spreads, shared stages, the "~same" rule, equivalence,
findings when Numba loses, progress and cancel."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from pydicom.data import get_testdata_file

from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.backends.contract import STAGES
from radbench.inference.benchmarking.compare import (
    END_TO_END_TOTAL,
    PREPROCESSING_TOTAL,
    SHARED_STAGES,
    TENSOR_TOLERANCE,
    Spread,
    compare_backends,
    speedup,
)
from radbench.inference.errors import Cancelled
from radbench.inference.loading import load_scan
from radbench.inference.model import Model


@pytest.fixture(scope="module")
def model():
    return Model()


@pytest.fixture(scope="module")
def scan():
    return load_scan(get_testdata_file("CT_small.dcm"))


@pytest.fixture(scope="module")
def comparison(model, scan):
    calls = []
    result = compare_backends(model, scan, repeats=2, progress=lambda *a: calls.append(a))
    return result, calls


def test_every_backend_gets_its_own_stages_with_spreads_and_the_shared_stages_once(comparison):
    comparison, calls = comparison
    assert tuple(comparison.results) == BACKEND_NAMES
    for name, result in comparison.results.items():
        assert result.repeats == 2 and result.last.backend == name
        assert list(result.stages) == [*STAGES, "heatmap", PREPROCESSING_TOTAL, END_TO_END_TOTAL]
        for spread in result.stages.values():
            assert len(spread.samples_ms) == 2 and 0 < spread.p10_ms <= spread.median_ms <= spread.p90_ms
        runs = zip(*(result.stages[s].samples_ms for s in STAGES))
        assert result.stages[PREPROCESSING_TOTAL].samples_ms == pytest.approx([sum(r) for r in runs])
    assert list(comparison.shared) == list(SHARED_STAGES)
    assert len(comparison.shared["decode"].samples_ms) == 2  # once per timed round
    assert len(comparison.shared["infer"].samples_ms) == 2 * len(BACKEND_NAMES)  # every backend's runs pooled
    decode, vectorized = comparison.shared["decode"], comparison.results["vectorized"]
    end_to_end = vectorized.stages[END_TO_END_TOTAL].samples_ms
    assert all(total > d for total, d in zip(end_to_end, decode.samples_ms))  # decode is in the end-to-end total
    assert (comparison.path.name, comparison.frame, comparison.frame_count) == ("CT_small.dcm", 0, 1)
    assert (comparison.repeats, comparison.warmups) == (2, 1) and comparison.usable_cpus >= 1
    assert comparison.equivalent and comparison.max_abs_diff <= TENSOR_TOLERANCE
    # 3 rounds (warm-up + 2) x 3 backends, interleaved, then a final call
    assert [c[2] for c in calls[:4]] == [*BACKEND_NAMES, BACKEND_NAMES[0]]
    assert calls[-1] == (9, 9, "")


@pytest.mark.parametrize("baseline, mine, factor", [
    ((10.0, 11.0, 12.0), (1.0, 1.1, 1.2), 10.0),  # apart: the ratio of the medians
    ((4.0, 5.0, 6.0), (5.5, 6.5, 7.5), None),  # the p10-p90 bands overlap: no defensible speedup
    ((4.0, 4.1, 4.2), (5.0, 5.2, 5.4), 4.1 / 5.2),  # apart, and slower: a factor under 1
    ((3.0,), (3.0,), None),  # one repeat each, equal
])
def test_a_speedup_is_given_only_where_the_spreads_do_not_overlap(baseline, mine, factor):
    result = speedup(Spread(baseline), Spread(mine))
    assert result == (None if factor is None else pytest.approx(factor))


def _numba_slower_on(comparison, stage: str):
    """``comparison`` with Numba's ``stage`` a hundred times slower than vectorized's, every repeat."""
    numba, vectorized = comparison.results["numba"], comparison.results["vectorized"]
    slowed = Spread(tuple(100 * v for v in vectorized.stages[stage].samples_ms))
    stages = MappingProxyType({**numba.stages, stage: slowed})
    results = {**comparison.results, "numba": dataclasses.replace(numba, stages=stages)}
    return dataclasses.replace(comparison, results=MappingProxyType(results))


@pytest.mark.parametrize("load, cause", [
    (3.2, "other processes kept about 2.2 cores busy (load average 3.2 over the last minute on 2 usable cores"),
    (1.1, "none detected: no other process was busy (load average 1.1 over the last minute on 2 usable cores"),
])
def test_numba_losing_a_stage_is_found_with_the_cause_it_can_detect(comparison, load, cause):
    comparison, _ = comparison
    slowed = dataclasses.replace(_numba_slower_on(comparison, "window"), load_average=load, usable_cpus=2)
    assert "window" in slowed.slower("numba", "vectorized")
    assert slowed.likely_cause().startswith(cause)


def test_cancel_stops_the_comparison(model, scan):
    with pytest.raises(Cancelled):
        compare_backends(model, scan, repeats=3, cancel=lambda: True)
