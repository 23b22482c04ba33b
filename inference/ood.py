"""Out-of-distribution checks: is this input unlike what the model was trained on?

A model card may declare its domain (``"domain"``): the DICOM modalities and body parts it was trained on,
and reference statistics of its training inputs (per-cell mean and std of an 8 x 8 area-averaged thumbnail
of the model input, with an alarm threshold on the RMS z-score distance). Any mismatch becomes a warning
carried by the prediction; a tag outside the domain, or an unlike image whose file does not name the tags the
domain declares, withholds its label (:func:`withheld_reason`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from radbench.inference.backends.resample import axis_matrix
from radbench.inference.errors import CODE_STRING, quoted
from radbench.inference.scan import Scan


def image_statistics(tensor: np.ndarray, cells: int = 8) -> np.ndarray:
    """The first channel of a ``(1, C, H, W)`` model input, area-averaged to ``cells x cells``, flattened."""
    image = np.asarray(tensor[0, 0], dtype=np.float64)
    return (axis_matrix(image.shape[0], cells) @ image @ axis_matrix(image.shape[1], cells).T).ravel()


def statistics_distance(tensor: np.ndarray, reference: Mapping[str, Any]) -> float:
    """RMS z-score of the input's thumbnail against the training set's per-cell mean and std."""
    stats = image_statistics(tensor, int(reference["cells"]))
    z = (stats - np.asarray(reference["mean"])) / np.asarray(reference["std"])
    return float(np.sqrt(np.mean(z ** 2)))


_SPELLED_WITH_A_VOWEL = "AEFHILMNORSX"  # "an MR", "an US", "a CT", "a DX": the article of an abbreviation


def withheld_reason(scan: Scan, tensor: np.ndarray, domain: Mapping[str, Any]) -> str | None:
    """Why no label may be given for ``scan`` (model input ``tensor``), or ``None``.

    The file's DICOM modality or body part outside the card's domain withholds it. So does an image unlike the
    training images (:func:`statistics_distance` beyond the card's threshold) when the file does not name every
    tag the card's domain declares (a PNG, JPEG or TIFF names none): then the statistics are the only evidence
    that the model's domain covers the scan. A file whose tags are all in the domain only gets the warning."""
    modalities = [m.upper() for m in domain.get("modalities", [])]
    body_parts = [b.upper() for b in domain.get("body_parts", [])]
    wrong_modality = bool(modalities and scan.modality and scan.modality.upper() not in modalities)
    wrong_part = bool(body_parts and scan.body_part and scan.body_part.upper() not in body_parts)
    trained = " ".join(filter(None, ("/".join(body_parts).lower(), "/".join(modalities))))
    if not (wrong_modality or wrong_part):
        unnamed = [name for name, declared, named in (("modality", modalities, scan.modality),
                                                      ("body part", body_parts, scan.body_part))
                   if declared and not named]
        unlike = _unlike_training(tensor, domain)
        if unlike and (unnamed or not (modalities or body_parts)):
            said = f"; the file does not name its {' or '.join(unnamed)}" if unnamed else ""
            return f"withheld: {unlike}{said}" + (f" (the model was trained on {trained} images)" if trained else "")
        return None
    modality = quoted(scan.modality) if scan.modality else ""
    this = (f"an {modality} image" if modality[:1] in _SPELLED_WITH_A_VOWEL else f"a {modality} image") \
        if modality else "an image"
    part = f" of the {quoted(scan.body_part)}" if scan.body_part else ""
    return f"withheld: the model was trained on {trained} images; this is {this}{part}"


def _unlike_training(tensor: np.ndarray, domain: Mapping[str, Any]) -> str | None:
    """How far the input's thumbnail lies from the training images', when beyond the card's threshold."""
    reference = domain.get("image_statistics")
    if not reference:
        return None
    distance = statistics_distance(tensor, reference)
    if distance <= float(reference["threshold"]):
        return None
    return (f"the image looks unlike the training images (distance {distance:.2f}, typical films stay below "
            f"{float(reference['threshold']):.2f})")


def domain_warnings(scan: Scan, tensor: np.ndarray, domain: Mapping[str, Any]) -> list[str]:
    """One message per way the input falls outside ``domain`` (a model card's ``"domain"`` entry)."""
    warnings = []
    modalities = [m.upper() for m in domain.get("modalities", [])]
    if modalities and scan.modality and scan.modality.upper() not in modalities:
        warnings.append(f"out of distribution: modality {quoted(scan.modality)}; the model was trained on "
                        f"{'/'.join(modalities)} images only")
    body_parts = [b.upper() for b in domain.get("body_parts", [])]
    if body_parts and scan.body_part and scan.body_part.upper() not in body_parts:
        warnings.append(f"out of distribution: body part {quoted(scan.body_part)}; the model was trained on "
                        f"{'/'.join(body_parts).lower()} images only")
    unlike = _unlike_training(tensor, domain)
    if unlike:
        warnings.append(f"out of distribution: {unlike}")
    return warnings


def domain_problems(domain: Mapping[str, Any], height: int, width: int) -> list[str]:
    """What is wrong with a card's ``domain`` for a model input of ``height x width`` (empty: nothing)."""
    problems = []
    for key in ("modalities", "body_parts"):
        values = domain.get(key, [])
        if not (isinstance(values, list) and all(isinstance(v, str) and CODE_STRING.fullmatch(v) for v in values)):
            problems.append(f"domain {key} must be a list of DICOM code strings (letters, digits, _ and space, "
                            "at most 16)")
    reference = domain.get("image_statistics")
    if reference and not _valid_statistics(reference, min(height, width)):
        problems.append(f"domain image_statistics needs whole cells from 1 to {min(height, width)} (the input size), "
                        "cells x cells finite means and positive finite stds, and a positive finite threshold")
    return problems


def _valid_statistics(reference: Any, max_cells: int) -> bool:
    try:
        cells = reference["cells"]
        mean, std = (np.asarray(reference[key], dtype=np.float64) for key in ("mean", "std"))
        threshold = float(reference["threshold"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return False
    return (isinstance(cells, int) and 1 <= cells <= max_cells and mean.shape == std.shape == (cells * cells,)
            and bool(np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all())
            and 0 < threshold < math.inf)
