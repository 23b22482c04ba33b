"""What every backend promises its callers: the registry and its contract check, output types, refusals, cancelling,
warm-up."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from backend_samples import BACKENDS

import radbench.inference.backends as registry
import radbench.inference.backends.naive as naive
import radbench.inference.backends.numba_jit as numba_jit
from radbench.inference.backends import BACKEND_NAMES, Backend, get_backend
from radbench.inference.backends.contract import FULL_SIZE_STAGES, STAGES, Stages
from radbench.inference.backends.resample import axis_weights
from radbench.inference.errors import BackendError, Cancelled
from radbench.inference.preprocessing import PreprocessSpec, preprocess

backends = pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
IMAGE = np.arange(20 * 13, dtype=np.float32).reshape(20, 13) / 100


#: Arguments after the image, per stage.
STAGE_ARGS = {"rescale": (2.0, -1.0), "window": (1.0, 2.0, True), "equalize": (), "resize": (7, 30),
              "normalize": ((0.5,), (0.25,), 3)}


def every_stage(backend, image, cancel=None):
    """Each stage's output, every stage fed the same ``image``."""
    return {stage: getattr(backend, stage)(image, *args, cancel=cancel) for stage, args in STAGE_ARGS.items()}


def test_unknown_backend_names_the_choices():
    with pytest.raises(BackendError) as error:
        get_backend("cuda")
    assert "'cuda'" in str(error.value)
    assert all(name in str(error.value) for name in ("naive", "vectorized", "numba"))


def test_registry_loads_each_backend_once():
    assert BACKEND_NAMES == ("naive", "vectorized", "numba")
    assert [b.name for b in BACKENDS] == list(BACKEND_NAMES)
    assert get_backend("numba") is get_backend("numba")
    assert [b.compiles for b in BACKENDS] == [False, False, True]


def test_the_contract_names_every_stage():
    assert [name for name in vars(Stages) if name in STAGES] == list(STAGES)


def test_the_registry_refuses_a_backend_module_missing_a_stage(monkeypatch):
    module = types.ModuleType("radbench_test_incomplete_backend")
    for stage in ("rescale", "window", "resize", "normalize"):
        setattr(module, stage, getattr(naive, stage))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry._REGISTRY, "incomplete", (module.__name__, "no equalize"))
    with pytest.raises(BackendError, match=r"^backend 'incomplete' breaks the stage contract: no equalize function$"):
        get_backend("incomplete")
    assert "incomplete" not in registry._loaded


def test_a_stage_with_other_parameters_breaks_the_contract():
    def resize(image, rows, cols, cancel=None):  # other names, and cancel not keyword-only
        return naive.resize(image, rows, cols, cancel=cancel)

    functions = {stage: getattr(naive, stage) for stage in STAGES}
    with pytest.raises(BackendError) as error:
        Backend(name="renamed", description="test", **{**functions, "resize": resize, "normalize": len})
    assert str(error.value) == (
        "backend 'renamed' breaks the stage contract: resize must take (image, height, width, *, cancel=None), not "
        "(image, rows, cols, cancel=None); normalize must take (image, mean, std, channels, *, cancel=None), not "
        "(obj, /)")
    assert Backend(name="same", description="test", **functions).equalize is naive.equalize


@backends
def test_stages_return_float32_of_the_promised_shape(backend):
    outputs = every_stage(backend, IMAGE)
    assert {stage: out.shape for stage, out in outputs.items()} == {
        "rescale": (20, 13), "window": (20, 13), "equalize": (20, 13), "resize": (7, 30), "normalize": (1, 3, 20, 13),
    }
    assert all(out.dtype == np.float32 for out in outputs.values())
    for stage in ("window", "equalize"):
        assert 0 <= outputs[stage].min() and outputs[stage].max() <= 1


@backends
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64])
def test_rescale_takes_any_real_dtype(backend, dtype):
    pixels = (IMAGE * 10).astype(dtype)
    out = backend.rescale(pixels, 0.5, -3.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (pixels.astype(np.float64) * 0.5 - 3.0).astype(np.float32))


@backends
def test_inputs_are_left_untouched_and_any_layout_is_accepted(backend):
    image = np.asfortranarray(IMAGE.astype(">f4"))[:, ::-1]  # big-endian, neither C- nor F-contiguous
    before = image.copy()
    outputs = every_stage(backend, image)
    np.testing.assert_array_equal(image, before)
    expected = every_stage(get_backend("vectorized"), np.ascontiguousarray(before, dtype=np.float32))
    for stage in STAGES:
        np.testing.assert_array_equal(outputs[stage], expected[stage])


FULL_SIZE_ARGS = {stage: STAGE_ARGS[stage] for stage in FULL_SIZE_STAGES}


@backends
@pytest.mark.parametrize("stage", FULL_SIZE_STAGES)
def test_full_size_stages_write_into_out_even_when_it_is_their_input(backend, stage):
    expected = getattr(backend, stage)(IMAGE, *FULL_SIZE_ARGS[stage])
    out = np.full(IMAGE.shape, np.nan, dtype=np.float32)
    assert getattr(backend, stage)(IMAGE, *FULL_SIZE_ARGS[stage], out=out) is out
    np.testing.assert_array_equal(out, expected)
    in_place = IMAGE.copy()  # the pipeline's one buffer: each stage reads it and writes it
    assert getattr(backend, stage)(in_place, *FULL_SIZE_ARGS[stage], out=in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)


@backends
@pytest.mark.parametrize("out", [np.empty((20, 13), np.float64), np.empty((13, 20), np.float32),
                                 np.empty((20, 26), np.float32)[:, ::2], np.empty((20, 13), ">f4"), [[0.0] * 13] * 20],
                         ids=["float64", "transposed shape", "strided", "big-endian", "list"])
def test_an_unusable_out_is_refused_in_words(backend, out):
    with pytest.raises(BackendError, match=r"^window needs out as a writeable C-contiguous float32 array of shape "
                                           r"\(20, 13\), got "):
        backend.window(IMAGE, None, None, False, out=out)


def test_the_pipeline_runs_the_full_size_stages_in_one_buffer():
    seen = []

    class Recording:
        def __getattr__(self, stage):
            def run(image, *args, out=None, cancel=None):
                seen.append((stage, out if out is None else out.ctypes.data))
                kwargs = {} if out is None else {"out": out}
                return getattr(get_backend("vectorized"), stage)(image, *args, **kwargs, cancel=cancel)
            return run

    spec = PreprocessSpec(1.0, 0.0, None, None, False, (7, 30), (0.5,), (0.25,), 1)
    tensor = preprocess(IMAGE, spec, Recording())
    np.testing.assert_array_equal(tensor, preprocess(IMAGE, spec, get_backend("vectorized")))
    buffers = dict(seen)
    assert buffers["resize"] is None and buffers["normalize"] is None
    assert buffers["rescale"] == buffers["window"] == buffers["equalize"] is not None


@backends
@pytest.mark.parametrize("center, width", [(1.0, 0.999), (1.0, 0.0), (1.0, -3.0), (1.0, np.nan), (np.inf, 10.0),
                                           (None, 10.0), (1.0, None)])
def test_window_refuses_widths_below_1_and_half_given_windows(backend, center, width):
    with pytest.raises(BackendError, match="window"):
        backend.window(IMAGE, center, width, False)


@backends
@pytest.mark.parametrize("image", [np.zeros((2, 3, 4)), np.zeros(5), np.zeros((0, 4)), np.zeros((2, 2), complex),
                                   np.zeros((2, 2), bool)], ids=["3-D", "1-D", "empty", "complex", "bool"])
@pytest.mark.parametrize("stage", STAGES)
def test_stages_refuse_what_is_not_a_2d_real_image(backend, stage, image):
    with pytest.raises(BackendError, match=stage):
        getattr(backend, stage)(image, *STAGE_ARGS[stage])


@backends
@pytest.mark.parametrize("height, width", [(0, 5), (5, 0), (-1, 5), (2.5, 5)])
def test_resize_refuses_sizes_that_are_not_positive_integers(backend, height, width):
    with pytest.raises(BackendError, match="resize"):
        backend.resize(IMAGE, height, width)


@backends
@pytest.mark.parametrize("mean, std, channels", [((0.5,), (0.25,), 0), ((0.5, 0.5), (0.25,), 3), ((0.5,), (0.0,), 1),
                                                 ((0.5,), (0.1, 0.2, 0.3, 0.4), 3), ((np.nan,), (1.0,), 1)])
def test_normalize_refuses_inconsistent_statistics(backend, mean, std, channels):
    with pytest.raises(BackendError, match="normalize"):
        backend.normalize(IMAGE, mean, std, channels)


@pytest.mark.parametrize("stage", STAGES)
def test_naive_stops_between_rows_when_cancel_turns_true(stage):
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3  # False for the first three rows, then True

    with pytest.raises(Cancelled):
        getattr(get_backend("naive"), stage)(IMAGE, *STAGE_ARGS[stage], cancel=cancel)
    assert len(calls) == 4


def test_naive_runs_to_the_end_while_cancel_stays_false():
    outputs = every_stage(get_backend("naive"), IMAGE, cancel=lambda: False)
    expected = every_stage(get_backend("vectorized"), IMAGE)
    for stage in STAGES:
        np.testing.assert_array_equal(outputs[stage], expected[stage])


@pytest.mark.parametrize("name", ["vectorized", "numba"])
def test_fast_backends_finish_their_stage_and_leave_cancelling_to_the_pipeline(name):
    asked = []

    def cancel():
        asked.append(1)
        return True

    outputs = every_stage(get_backend(name), IMAGE, cancel=cancel)
    expected = every_stage(get_backend(name), IMAGE)
    for stage in STAGES:
        np.testing.assert_array_equal(outputs[stage], expected[stage])
    assert asked == []  # never even asked: the pipeline checks between stages


def fresh_numba_backend() -> Backend:
    """A numba Backend with no warm dtypes yet (the registry's one is shared across tests)."""
    return Backend.from_module("numba", "test", numba_jit)


def numba_signatures() -> dict[str, int]:
    kernels = numba_jit.kernels()
    assert len(kernels) >= len(STAGES)
    return {name: len(kernel.signatures) for name, kernel in kernels.items()}


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_numba_warm_up_compiles_everything_a_run_needs(dtype):
    backend = fresh_numba_backend()
    assert not backend.is_warm(dtype)
    assert backend.warm_up(dtype) > 0
    assert backend.is_warm(dtype) and not backend.is_warm(np.float64)
    assert backend.warm_up(dtype) == 0.0

    compiled = numba_signatures()
    pixels = (np.arange(300 * 200) % 4000).astype(dtype).reshape(300, 200)[::2, 1:]
    image = backend.rescale(pixels, 1, -1024)  # int scalars and strided input: still the warm kernels
    image = backend.window(image, 40, 400, True)
    backend.window(image, None, None, False)
    image = backend.equalize(image)
    backend.resize(image, 224, 224)
    backend.normalize(backend.resize(image, 8, 8), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 3)
    assert numba_signatures() == compiled


@pytest.mark.parametrize("name", ["naive", "vectorized"])
def test_backends_that_do_not_compile_are_always_warm(name):
    backend = get_backend(name)
    assert backend.is_warm(np.uint16)
    assert backend.warm_up(np.uint16) == 0.0


@pytest.mark.parametrize("n_in, n_out", [(1, 1), (1, 7), (7, 1), (9, 4), (4, 9), (1955, 224), (224, 1955), (5, 5)])
def test_axis_weights_are_normalised_and_stay_inside_the_axis(n_in, n_out):
    starts, weights = axis_weights(n_in, n_out)
    assert starts.dtype == np.int64 and starts.shape == (n_out,)
    assert weights.dtype == np.float64 and weights.shape[0] == n_out
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (weights >= 0).all()
    assert starts.min() >= 0 and starts.max() + weights.shape[1] <= n_in


def test_axis_weights_area_and_bilinear_values():
    starts, weights = axis_weights(4, 3)  # each output covers 4/3 of an input pixel
    np.testing.assert_array_equal(starts, [0, 1, 2])
    np.testing.assert_allclose(weights, [[0.75, 0.25], [0.5, 0.5], [0.25, 0.75]])
    starts, weights = axis_weights(2, 4)  # half-pixel centres: sources -0.25, 0.25, 0.75, 1.25
    np.testing.assert_allclose([w @ [0.0, 1.0] + s for s, w in zip(starts, weights)], [0, 0.25, 0.75, 1])


@pytest.mark.parametrize("n_in, n_out", [(0, 3), (3, 0), (-2, 3)])
def test_axis_weights_refuse_empty_axes(n_in, n_out):
    with pytest.raises(BackendError):
        axis_weights(n_in, n_out)
