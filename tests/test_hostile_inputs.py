"""Hostile inputs built in the test: NaN pixels, models whose outputs are not numbers, crafted cards, absurd
options and header values that try to forge output lines. Each costs one clear line, never a traceback."""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from dicom_files import secondary_capture
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from radbench.app.cli import main
from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.backends.contract import STAGES
from radbench.inference.backends.numba_jit import fused_preprocess
from radbench.inference.errors import BackendError, ModelError, quoted
from radbench.inference.model import Model
from radbench.inference.overlay_export import caption
from radbench.inference.pipeline import Pipeline
from radbench.inference.preprocessing import PreprocessSpec, preprocess

SIDE = 16
CARD = {"name": "hostile-test", "version": "1", "labels": ["NORMAL", "PNEUMONIA"],
        "input": {"height": SIDE, "width": SIDE, "channels": 1},
        "normalization": {"mean": [0.5], "std": [0.25]}, "activation": "softmax"}
STAGE_ARGS = {"rescale": (1.0, 0.0), "window": (None, None, False), "equalize": (), "resize": (4, 4),
              "normalize": ((0.5,), (0.25,), 1)}


# ---------------------------------------------------------------- builders


def constant_model(path: Path, outputs: dict[str, np.ndarray], card: dict | None = CARD) -> Path:
    """An ONNX model taking a (batch, 1, SIDE, SIDE) image and returning the constant ``outputs``."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIDE, SIDE])
    nodes, infos = [], []
    for name, value in outputs.items():
        value = np.asarray(value)
        nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value)))
        infos.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                   list(value.shape)))
    model = helper.make_model(helper.make_graph(nodes, "constant", [image], infos),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if card is not None:
        helper.set_model_props(model, {"radbench.card": json.dumps(card)})
    onnx.save(model, path)
    return path


def good_model(path: Path, card: dict | None = CARD) -> Path:
    return constant_model(path, {"logits": np.array([[2.0, -1.0]], np.float32)}, card)


def card_with(**changes) -> dict:
    """``CARD`` with dotted keys replaced, e.g. ``card_with(**{"input.height": 5000})``."""
    card = copy.deepcopy(CARD)
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        target = card
        for parent in parents:
            target = target.setdefault(parent, {})
        target[key] = value
    return card


def float_tiff(path: Path, bad: float = np.nan) -> Path:
    pixels = np.linspace(0, 1, 48 * 40, dtype=np.float32).reshape(48, 40)
    pixels[3, 4] = pixels[10, 20] = bad
    Image.fromarray(pixels, mode="F").save(path)
    return path


def grey_png(path: Path) -> Path:
    Image.fromarray(np.arange(48 * 40, dtype=np.uint32).reshape(48, 40).astype(np.uint8)).save(path)
    return path


def float_dicom(path: Path, pixels: np.ndarray, modality: str = "CR", body_part: str = "CHEST",
                window: tuple[float, float] | None = (0.5, 1.0)) -> Path:
    """A DICOM with Float Pixel Data (32-bit) and, unless ``window`` is None, a window preset."""
    ds = secondary_capture()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about values that break the VR's rules: that is the point
        ds.Modality, ds.BodyPartExamined = modality, body_part
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", 32
    ds.FloatPixelData = pixels.astype(np.float32).tobytes()
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def nan_dicom(path: Path) -> Path:
    pixels = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    pixels[5, 5] = np.nan
    return float_dicom(path, pixels)


def deeply_nested(depth: int = 200_000) -> str:
    return "[" * depth + "]" * depth


def run_cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def problem_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("error:", "radbench"))]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return {"nan": float_tiff(tmp_path / "nan.tif"), "good": grey_png(tmp_path / "good.png")}


# ---------------------------------------------------------------- 1. NaN and infinity in pixels


def own_range_spec(slope: float) -> PreprocessSpec:
    """The stage arguments of :data:`STAGE_ARGS`, but rescaling by ``slope``."""
    return PreprocessSpec(slope, 0.0, *STAGE_ARGS["window"], STAGE_ARGS["resize"], *STAGE_ARGS["normalize"])


def staged_message(backend, pixels: np.ndarray, slope: float) -> str:
    """What the five stages of ``backend`` say about ``pixels`` (rescaled by ``slope``), run as the pipeline does."""
    with pytest.raises(BackendError) as error:
        preprocess(pixels, own_range_spec(slope), backend)
    return str(error.value)


@pytest.mark.parametrize("bad", [np.nan, np.copysign(np.nan, -1), np.inf, -np.inf],
                         ids=["nan", "negative nan", "inf", "-inf"])
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_every_stage_of_every_backend_refuses_non_finite_pixels_in_one_message(backend, stage, bad):
    image = np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 6)
    image[1, 2] = image[4, 0] = bad
    with pytest.raises(BackendError) as error:
        getattr(get_backend(backend), stage)(image, *STAGE_ARGS[stage])
    assert str(error.value) == f"{stage} refused: the image has 2 non-finite pixel values (NaN or infinity)"


@pytest.mark.parametrize("center, width", [(1.0, 0.5), (1.0, None), (np.inf, 10.0)],
                         ids=["narrow", "half given", "infinite center"])
def test_a_non_finite_image_is_refused_before_a_bad_window_by_every_backend(center, width):
    """Two faults at once get one answer: the image's NaN, whichever backend runs (Numba's window checks pixels in
    its own pass, after the window's values, so it must look at the pixels first when the window is refused)."""
    image = np.array([[np.nan, 1.0, 2.0]], np.float32)
    messages = set()
    for backend in BACKEND_NAMES:
        with pytest.raises(BackendError) as error:
            get_backend(backend).window(image, center, width, False)
        messages.add(str(error.value))
    assert messages == {"window refused: the image has 1 non-finite pixel value (NaN or infinity)"}


@pytest.mark.parametrize("size", [(7, 5), (13, 11), (100, 90), (240, 200)], ids=["shrink", "shrink-odd", "same",
                                                                            "enlarge"])
@pytest.mark.parametrize("where", [(0, 0), (99, 89), (50, 0), (0, 89)], ids=["first", "last", "left", "right"])
@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_resize_refuses_one_non_finite_pixel_wherever_it_lies(backend, size, where):
    image = np.random.default_rng(3).random((100, 90), dtype=np.float32)
    image[where] = np.nan
    with pytest.raises(BackendError, match=r"^resize refused: the image has 1 non-finite pixel value "):
        get_backend(backend).resize(image, *size)


@pytest.mark.parametrize("pixels, slope, expected", [
    (np.array([[0.5, np.nan, 2.0]], np.float32), 1.0,
     "rescale refused: the image has 1 non-finite pixel value (NaN or infinity)"),
    (np.array([[1.0, 2.0], [np.inf, -np.inf]]), 1.0,
     "rescale refused: the image has 2 non-finite pixel values (NaN or infinity)"),
    (np.arange(6, dtype=np.int16).reshape(2, 3), 1e300,  # finite pixels, beyond float32 once rescaled
     "window refused: the image has 5 non-finite pixel values (NaN or infinity)"),
    (np.arange(6, dtype=np.uint8).reshape(2, 3), np.inf,  # inf * 0 is NaN
     "window refused: the image has 6 non-finite pixel values (NaN or infinity)"),
    (np.arange(6, dtype=np.float64).reshape(2, 3), np.nan,
     "window refused: the image has 6 non-finite pixel values (NaN or infinity)"),
], ids=["nan", "inf", "overflow", "inf-slope", "nan-slope"])
def test_staged_backends_and_the_fused_path_refuse_alike(pixels, slope, expected):
    messages = {name: staged_message(get_backend(name), pixels, slope) for name in BACKEND_NAMES}
    with pytest.raises(BackendError) as fused:
        fused_preprocess(pixels, own_range_spec(slope))
    messages["fused"] = str(fused.value)
    assert set(messages.values()) == {expected}


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_pipeline_refuses_float_tiff_and_float_dicom_with_nan(backend, files, tmp_path):
    pipeline = Pipeline(Model(good_model(tmp_path / "m.onnx")), backend)
    for path in (files["nan"], nan_dicom(tmp_path / "nan.dcm")):
        with pytest.raises(BackendError, match=r"rescale refused: the image has \d+ non-finite pixel value"):
            pipeline.run(path)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_predict_reports_the_nan_file_in_one_line_and_still_classifies_the_good_one(backend, files, capsys):
    status, out, err = run_cli(capsys, "predict", files["nan"], files["good"], "--backend", backend)
    assert status == 1
    assert f"{files['good']}  [frame 1 of 1" in out and "prediction:" in out
    assert problem_lines(err) == [
        f"error: {files['nan']}: rescale refused: the image has 2 non-finite pixel values (NaN or infinity)"]


def test_batch_writes_an_error_row_for_the_nan_file(files, tmp_path, capsys):
    out, js = tmp_path / "rows.csv", tmp_path / "rows.json"
    status, _, _ = run_cli(capsys, "batch", files["nan"].parent, "--workers", 1, "--out", out, "--json", js,
                           "--backend", "numba")
    assert status == 0
    rows = {Path(r["path"]).name: r for r in json.loads(js.read_text())["rows"]}
    assert rows["nan.tif"]["status"] == "error" and "non-finite" in rows["nan.tif"]["error"]
    assert rows["good.png"]["status"] == "ok"


@pytest.mark.parametrize("backend", ["naive", "vectorized", "numba"])
def test_profile_of_a_float_dicom_with_nan_and_a_window_is_one_line(backend, tmp_path, capsys):
    path = nan_dicom(tmp_path / "nan.dcm")
    status, _, err = run_cli(capsys, "profile", path, "--backend", backend, "--out", tmp_path / "x.prof")
    assert status == 1
    assert err.strip() == (f"radbench profile: {path}: rescale refused: the image has 1 non-finite pixel value "
                           "(NaN or infinity)")


# ---------------------------------------------------------------- 2. model outputs that are not numbers


BAD_OUTPUTS = {
    "nan": np.array([[np.nan, 1.0]], np.float32),
    "inf": np.array([[np.inf, 1.0]], np.float32),
    "integer": np.array([[3, 1]], np.int64),
    "string": np.array([["NORMAL", "PNEUMONIA"]], object),
    "scalar": np.array(1.0, np.float32),
    "empty": np.zeros((1, 0), np.float32),
}


@pytest.mark.parametrize("kind", BAD_OUTPUTS)
def test_outputs_that_are_not_finite_float_scores_are_refused_naming_the_model(kind, files, tmp_path):
    path = constant_model(tmp_path / f"{kind}.onnx", {"logits": BAD_OUTPUTS[kind]})
    words = r"model output 'logits' (holds \d+ non-finite|must be float)"
    with pytest.raises(ModelError, match=rf"^{re.escape(str(path))}: {words}"):
        Pipeline(Model(path), "vectorized").run(files["good"])


def test_class_maps_with_nan_are_refused(files, tmp_path):
    maps = np.zeros((1, 2, 4, 4), np.float32)
    maps[0, 1, 2, 2] = np.nan
    path = constant_model(tmp_path / "cam.onnx", {"logits": np.array([[1.0, 0.0]], np.float32), "cam": maps},
                          card_with(cam_output="cam"))
    with pytest.raises(ModelError, match="model output 'cam' holds 1 non-finite value"):
        Pipeline(Model(path), "vectorized").run(files["good"])


def test_probabilities_outside_0_1_are_refused_when_the_card_says_they_are_probabilities(files, tmp_path):
    path = constant_model(tmp_path / "p.onnx", {"p": np.array([[1.5, -0.5]], np.float32)},
                          card_with(activation="none"))
    with pytest.raises(ModelError, match=r"must hold probabilities in \[0, 1\]"):
        Pipeline(Model(path), "vectorized").run(files["good"])


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_predict_with_a_nan_model_is_one_line_and_prints_no_result(json_flag, files, tmp_path, capsys):
    model = constant_model(tmp_path / "nan.onnx", {"logits": BAD_OUTPUTS["nan"]})
    status, out, err = run_cli(capsys, "predict", files["good"], "--model", model, *json_flag)
    assert status == 1
    assert "prediction:" not in out and "{" not in out
    assert problem_lines(err) == [
        f"error: {files['good']}: {model}: model output 'logits' holds 1 non-finite value (NaN or infinity)"]


def test_batch_turns_a_nan_model_into_error_rows_and_writes_valid_json(files, tmp_path, capsys):
    model = constant_model(tmp_path / "nan.onnx", {"logits": BAD_OUTPUTS["nan"]})
    out, js = tmp_path / "rows.csv", tmp_path / "rows.json"
    status, _, _ = run_cli(capsys, "batch", files["good"].parent, "--model", model, "--workers", 1,
                           "--out", out, "--json", js, "--glob", "*.png")

    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")

    rows = json.loads(js.read_text(), parse_constant=refuse)["rows"]
    assert status == 0
    assert [(r["status"], r["error"]) for r in rows] == [
        ("error", f"{model}: model output 'logits' holds 1 non-finite value (NaN or infinity)")]


def test_predict_json_is_strict_json(files, tmp_path, capsys):
    status, out, _ = run_cli(capsys, "predict", files["good"], "--json", "--model", good_model(tmp_path / "m.onnx"))
    assert status == 0
    record = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert record["label"] == "NORMAL"


# ---------------------------------------------------------------- 3. cards


@pytest.mark.parametrize("where", ["metadata", "beside"])
@pytest.mark.parametrize("command", ["predict", "batch", "profile"])
def test_a_card_nested_200000_deep_is_one_line_in_every_command(where, command, files, tmp_path, capsys):
    model = tmp_path / "deep.onnx"
    if where == "metadata":
        constant_model(model, {"logits": np.array([[1.0, 0.0]], np.float32)}, card=None)
        proto = onnx.load(model)
        helper.set_model_props(proto, {"radbench.card": deeply_nested()})
        onnx.save(proto, model)
    else:
        good_model(model, card=None)
        model.with_suffix(".card.json").write_text(deeply_nested())
    target = {"predict": files["good"], "batch": tmp_path, "profile": files["good"]}[command]
    extra = {"predict": [], "batch": ["--out", tmp_path / "rows.csv"], "profile": ["--out", tmp_path / "x.prof"]}
    status, _, err = run_cli(capsys, command, target, "--model", model, *extra[command])
    assert status == (2 if command == "batch" else 1)
    prefix = "radbench" if command == "predict" else f"radbench {command}"
    assert problem_lines(err) == [f"{prefix}: {model}: model card is nested too deeply to read"]


def test_a_card_file_that_is_not_utf8_is_refused(tmp_path):
    model = good_model(tmp_path / "latin1.onnx", card=None)
    text = json.dumps(CARD).replace("hostile-test", "h\u00f6stile")
    model.with_suffix(".card.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ModelError, match=r"latin1\.card\.json: model card is not UTF-8 text \(invalid "):
        Model(model)


@pytest.mark.parametrize("card, words", [
    ([CARD], "must be a JSON object, not list"),
    (card_with(**{"input.height": 5000}), "height and width must lie between 1 and 4096"),
    (card_with(**{"input.width": 1e400}), "incomplete or malformed"),
    (card_with(**{"input.channels": 2}), "channels must be 1 or 3"),
    (card_with(labels="NORMAL"), "labels must be a list of text"),
    (card_with(labels=["NORMAL", "NORMAL"]), "labels must be unique, not repeat NORMAL"),
    (card_with(labels=["NORMAL", "PNEU\nprediction: NORMAL"]), r"printable characters, not 'PNEU\\nprediction"),
    (card_with(labels=["NORMAL", "A\x1b[2J"]), r"printable characters, not 'A\\x1b\[2J'"),
    (card_with(labels=["NORMAL", "X" * 65]), "1 to 64 printable characters"),
    (card_with(labels=[f"L{i}" for i in range(1001)]), "has 1001 labels, more than 1000"),
    (card_with(name="evil\rname"), r"not 'evil\\rname'"),
    (card_with(**{"normalization.std": [1e-45]}), "std between 1e-06 and 1000"),
    (card_with(**{"normalization.std": [0.0]}), "std between 1e-06 and 1000"),
    (card_with(**{"normalization.mean": [float("nan")]}), "mean must lie between -1000 and 1000"),
    (card_with(decision="PNEUMONIA"), "incomplete or malformed"),
    (card_with(**{"domain.modalities": "CR"}), "domain modalities must be a list of DICOM code strings"),
    (card_with(**{"domain.body_parts": ["CHEST\nWARNING"]}), "domain body_parts must be a list"),
    (card_with(**{"domain.image_statistics": {"cells": 4096, "mean": [0.0], "std": [1.0], "threshold": 2}}),
     "image_statistics needs whole cells from 1 to 16"),
    (card_with(**{"domain.image_statistics": {"cells": 2, "mean": [0.0] * 3, "std": [1.0] * 4, "threshold": 2}}),
     "image_statistics"),
    (card_with(**{"domain.image_statistics": {"cells": 2, "mean": [0.0] * 4, "std": [0.0] * 4, "threshold": 2}}),
     "image_statistics"),
    (card_with(**{"domain.image_statistics": {"cells": 2, "mean": [0.0] * 4, "std": [1.0] * 4, "threshold": "x"}}),
     "image_statistics"),
])
def test_cards_outside_sane_bounds_are_refused_with_the_reason(card, words, tmp_path):
    path = good_model(tmp_path / "m.onnx", card=None)
    path.with_suffix(".card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=words) as error:
        Model(path)
    assert "\n" not in str(error.value) and str(error.value).startswith(str(path))


def test_a_card_with_sane_domain_statistics_is_used(files, tmp_path):
    stats = {"cells": 2, "mean": [5.0] * 4, "std": [1.0] * 4, "threshold": 3.0}  # normalized images lie in [-2, 2]
    path = good_model(tmp_path / "m.onnx", card_with(**{"domain.image_statistics": stats}))
    prediction = Pipeline(Model(path), "vectorized").run(files["good"])
    assert any("looks unlike the training images" in w for w in prediction.ood_warnings)


# ---------------------------------------------------------------- 4. options


@pytest.mark.parametrize("option, value", [("--opacity", "nan"), ("--opacity", "inf"), ("--opacity", "-0.1"),
                                           ("--opacity", "1.5"), ("--opacity", "half"), ("--threads", "0"),
                                           ("--threads", "-3"), ("--threads", "two")])
def test_absurd_predict_options_are_argparse_errors(option, value, files, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(files["good"]), option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: needs a" in err and repr(value) in err


def test_too_many_threads_are_capped_at_the_usable_cpus_with_a_note(files, tmp_path, capsys):
    status, out, err = run_cli(capsys, "predict", files["good"], "--threads", 2000,
                               "--model", good_model(tmp_path / "m.onnx"))
    assert status == 0 and "prediction:" in out
    usable = len(os.sched_getaffinity(0))
    assert f"note: --threads 2000 capped at {usable}, the CPUs this process may use" in err.splitlines()


# ---------------------------------------------------------------- 5. header values in outputs


@pytest.mark.parametrize("value, shown", [("CT", "CT"), ("CHEST", "CHEST"), ("LEFT KNEE", "LEFT KNEE"),
                                          ("MR\nprediction: NORMAL", r"'MR\nprediction: NORMAL'"),
                                          ("x" * 40, "'" + "x" * 32 + "…'"), ("CT\x00", r"'CT\x00'")])
def test_header_values_are_shown_plain_or_quoted_and_cut(value, shown):
    assert quoted(value) == shown


def test_crafted_modality_and_body_part_cannot_forge_output_lines(tmp_path, capsys):
    modality, body_part = "MR\n  prediction: NORMAL", "KNEE\r\nWARNING: none"
    pixels = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    path = float_dicom(tmp_path / "forged.dcm", pixels, modality=modality, body_part=body_part)
    status, out, _ = run_cli(capsys, "predict", path)
    assert status == 0
    lines = out.splitlines()
    assert len([line for line in lines if line.lstrip().startswith("prediction:")]) == 1
    assert not [line for line in lines if line.lstrip().startswith("WARNING")]
    assert r"'MR\n  prediction: NORMAL'" in out and r"'KNEE\r\nWARNING: none'" in out

    prediction = Pipeline(Model(), "vectorized").run(path)
    assert prediction.ood_warnings[:2] == (
        r"out of distribution: modality 'MR\n  prediction: NORMAL'; the model was trained on CR/DX images only",
        r"out of distribution: body part 'KNEE\r\nWARNING: none'; the model was trained on chest images only")
    assert not any("\n" in line or "\r" in line for line in caption(prediction))


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", ">f8", "<f2"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_numbas_finite_check_agrees_with_numpy_on_every_float_layout(dtype, bad):
    from radbench.inference.backends.numba_jit import all_finite

    image = np.linspace(-3e4, 3e4, 37 * 53).reshape(37, 53).astype(dtype)
    if bad is not None:
        image[17, 41] = bad
    for view in (image, image[:, ::2], image.T):  # contiguous, strided and transposed
        assert all_finite(view) == bool(np.isfinite(view).all())
