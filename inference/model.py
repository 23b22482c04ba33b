"""The ONNX classifier: its card, an ONNX Runtime session on CPU, and turning outputs into probabilities."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from radbench.inference.errors import ModelError, quoted
from radbench.inference.onnx_runtime import OPTIMIZATION_LEVELS, cpu_session, session_options
from radbench.inference.ood import domain_problems
from radbench.inference.threads import check_threads, onnx_threads

#: Key of the card in the ONNX file's ``metadata_props``; ``<model>.card.json`` beside the file also works.
CARD_KEY = "radbench.card"

#: The model used when none is named: the bundled one (package data of ``radbench.models``, the repository's
#: ``models/`` folder).
DEFAULT_MODEL_PATH = Path(str(files("radbench.models").joinpath("pneumonia.onnx")))

NOT_FOR_CLINICAL_USE = "For education, not for clinical use."

_ACTIVATIONS = ("softmax", "sigmoid", "none")
#: Sane bounds a card must keep: input side, labels, length of a label or name, normalization (of [0, 1] images).
MAX_SIDE, MAX_LABELS, MAX_TEXT = 4096, 1000, 64
MIN_STD, MAX_NORMALIZATION = 1e-6, 1e3


@dataclass(frozen=True)
class ModelCard:
    """What the pipeline needs to know about a classifier, and what a user should know about it."""

    name: str
    version: str
    labels: tuple[str, ...]
    input_height: int
    input_width: int
    input_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    activation: str = "softmax"  # applied to the first output: softmax, sigmoid, or none (already probabilities)
    equalize: bool = True
    untrained: bool = False
    intended_use: str = ""
    positive_label: str | None = None  # with ``threshold``: that label wins when its probability >= threshold
    threshold: float | None = None
    cam_output: str | None = None  # name of the output holding class activation maps (batch, classes, h, w)
    domain: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # see inference.ood
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, card: dict[str, Any], source: str) -> ModelCard:
        """Validate a card read from ``source``; ``ModelError`` says which field is wrong."""
        try:
            inp, norm = card["input"], card["normalization"]
            if not isinstance(card["labels"], list) or not all(isinstance(label, str) for label in card["labels"]):
                raise TypeError("labels must be a list of text")
            parsed = cls(
                name=str(card["name"]),
                version=str(card["version"]),
                labels=tuple(card["labels"]),
                input_height=int(inp["height"]),
                input_width=int(inp["width"]),
                input_channels=int(inp["channels"]),
                mean=tuple(float(v) for v in norm["mean"]),
                std=tuple(float(v) for v in norm["std"]),
                activation=str(card.get("activation", "softmax")),
                equalize=bool(card.get("preprocessing", {}).get("equalize", True)),
                untrained=bool(card.get("untrained", False)),
                intended_use=str(card.get("intended_use", "")),
                positive_label=_optional(card.get("decision", {}).get("positive_label"), str),
                threshold=_optional(card.get("decision", {}).get("threshold"), float),
                cam_output=_optional(card.get("cam_output"), str),
                domain=dict(card.get("domain", {})),
                extra={k: v for k, v in card.items() if k not in _CARD_FIELDS},
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ModelError(f"{source}: model card is incomplete or malformed ({exc!r})") from exc
        problems = []
        labels = parsed.labels
        if len(labels) < 2 and parsed.activation != "sigmoid":
            problems.append("needs at least two labels")
        if len(labels) > MAX_LABELS:
            problems.append(f"has {len(labels)} labels, more than {MAX_LABELS}")
        unprintable = [text for text in (parsed.name, parsed.version, *labels) if not _plain(text)]
        if unprintable:
            problems.append(f"name, version and labels must be 1 to {MAX_TEXT} printable characters, not "
                            f"{quoted(unprintable[0])}")
        repeated = sorted(label for label, count in Counter(labels).items() if count > 1)
        if repeated:
            problems.append(f"labels must be unique, not repeat {', '.join(map(quoted, repeated))}")
        if parsed.activation not in _ACTIVATIONS:
            problems.append(f"activation must be one of {', '.join(_ACTIVATIONS)}")
        if not (1 <= parsed.input_height <= MAX_SIDE and 1 <= parsed.input_width <= MAX_SIDE):
            problems.append(f"input height and width must lie between 1 and {MAX_SIDE}")
        if parsed.input_channels not in (1, 3):
            problems.append("input channels must be 1 or 3")
        if any(len(v) not in (1, parsed.input_channels) for v in (parsed.mean, parsed.std)):
            problems.append("normalization mean/std need 1 value or one per channel")
        limit = MAX_NORMALIZATION
        if not (all(abs(m) <= limit for m in parsed.mean) and all(MIN_STD <= s <= limit for s in parsed.std)):
            problems.append(f"normalization mean must lie between -{limit:g} and {limit:g} and std between "
                            f"{MIN_STD:g} and {limit:g} (the image is in [0, 1] when normalized)")
        problems += domain_problems(parsed.domain, parsed.input_height, parsed.input_width)
        if (parsed.positive_label is None) != (parsed.threshold is None) or (
                parsed.positive_label is not None and parsed.positive_label not in parsed.labels):
            problems.append("decision needs a positive_label among the labels and a threshold")
        elif parsed.threshold is not None and not 0.0 < parsed.threshold < 1.0:
            problems.append("decision threshold must lie between 0 and 1")
        if problems:
            raise ModelError(f"{source}: model card {'; '.join(problems)}")
        return parsed

    def decide(self, probs: np.ndarray) -> str:
        """The predicted label: the card's decision threshold when it has one, else the most probable label."""
        if self.threshold is not None:
            positive = self.labels.index(self.positive_label)
            if probs[positive] >= self.threshold:
                return self.positive_label
            probs = np.where(np.arange(len(probs)) == positive, -np.inf, probs)
        return self.labels[int(np.argmax(probs))]


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def _plain(text: str) -> bool:
    return 0 < len(text) <= MAX_TEXT and text.isprintable()


_CARD_FIELDS = {"name", "version", "labels", "input", "normalization", "activation", "preprocessing",
                "untrained", "intended_use", "decision", "cam_output", "domain"}


class Model:
    """An ONNX classifier on CPU with its card.

    It infers on as many ONNX Runtime intra-op threads as :func:`inference.threads.compute_threads` sets on the
    calling thread (one by default): a session is made the first time a thread count is used and reused after.
    With ``profile_prefix`` its sessions profile every operator (:func:`inference.onnx_runtime.session_options`).
    """

    def __init__(self, path: str | Path | None = None, *, optimization: str = "all",
                 profile_prefix: str | Path | None = None):
        self.path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        if optimization not in OPTIMIZATION_LEVELS:
            raise ModelError(f"graph optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}")
        self._optimization, self._profile_prefix = optimization, profile_prefix
        self._sessions: dict[int, Any] = {}  # intra-op threads -> session
        self._sessions_lock = threading.Lock()
        try:
            first = self.session_for()
        except Exception as exc:  # ONNX Runtime raises its own untyped errors for any unreadable file
            raise ModelError(f"{self.path}: not a usable ONNX model ({_first_line(exc)})") from exc
        self.session = first  # the session of the thread count in force when the model was made (its metadata)
        self.card = ModelCard.from_dict(self._read_card(), str(self.path))
        self._input = self.session.get_inputs()[0]
        self._output_names = [o.name for o in self.session.get_outputs()]
        self._check_input()
        if self.card.cam_output is not None and self.card.cam_output not in self._output_names:
            raise ModelError(f"{self.path}: its card names a CAM output {self.card.cam_output!r}, but the model's "
                             f"outputs are {', '.join(map(repr, self._output_names))}")

    def _read_card(self) -> dict[str, Any]:
        beside = self.path.with_suffix(".card.json")
        text = self.session.get_modelmeta().custom_metadata_map.get(CARD_KEY)
        if text is None and beside.is_file():
            try:
                text = beside.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ModelError(f"{beside}: model card is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            except OSError as exc:
                raise ModelError(f"{beside}: cannot read the model card ({exc.strerror or exc})") from None
        if text is None:
            raise ModelError(f"{self.path}: no model card (ONNX metadata {CARD_KEY!r} or {beside.name} beside it); "
                             "RadBench cannot know the labels and preprocessing without one")
        try:
            card = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{self.path}: model card is not valid JSON ({exc})") from None
        except RecursionError:
            raise ModelError(f"{self.path}: model card is nested too deeply to read") from None
        if not isinstance(card, dict):
            raise ModelError(f"{self.path}: model card must be a JSON object, not {type(card).__name__}")
        return card

    def _check_input(self) -> None:
        card = self.card
        expected = [card.input_channels, card.input_height, card.input_width]
        shape = self._input.shape
        declared = [d if isinstance(d, int) else None for d in shape[1:]]
        if len(shape) != 4 or any(d is not None and d != e for d, e in zip(declared, expected)):
            raise ModelError(f"{self.path}: model input {self._input.name} has shape {shape}, but its card says "
                             f"(batch, {', '.join(map(str, expected))})")
        if self._input.type != "tensor(float)":
            raise ModelError(f"{self.path}: model input must be float32, not {self._input.type}")

    def session_for(self, threads: int | None = None):
        """The session with ``threads`` intra-op threads (default: :func:`~inference.threads.onnx_threads` of the
        calling thread), made on first use; ``ThreadsError`` for a count Numba could not run either."""
        threads = onnx_threads() if threads is None else check_threads(threads)
        with self._sessions_lock:
            if threads not in self._sessions:
                options = session_options(threads, optimization=self._optimization,
                                          profile_prefix=self._profile_prefix)
                self._sessions[threads] = cpu_session(self.path, options)
            return self._sessions[threads]

    @property
    def threads(self) -> int:
        """ONNX Runtime's intra-op threads that :meth:`infer` uses on the calling thread."""
        return onnx_threads()

    @property
    def title(self) -> str:
        """Name and version, marked when the model is an untrained placeholder."""
        return f"{self.card.name} {self.card.version}" + (" (UNTRAINED placeholder)" if self.card.untrained else "")

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the session of the calling thread's ONNX Runtime thread count on a ``(batch, channels, height,
        width)`` float32 tensor; all outputs."""
        return self.session_for().run(None, {self._input.name: tensor})

    def label(self, tensor: np.ndarray) -> str:
        """The card's decision on the first image of a model input (no out-of-domain checks: those need the scan)."""
        return self.card.decide(self.probabilities(self.infer(tensor)))

    def class_maps(self, outputs: list[np.ndarray]) -> np.ndarray | None:
        """The first image's class activation maps ``(classes, h, w)``, or None if the model has none."""
        if self.card.cam_output is None:
            return None
        maps = self._first_image(outputs, self._output_names.index(self.card.cam_output))
        if maps.ndim != 3 or maps.shape[0] != len(self.card.labels):
            raise ModelError(f"{self.path}: CAM output has shape {maps.shape}, expected (classes, h, w)")
        return maps

    def probabilities(self, outputs: list[np.ndarray]) -> np.ndarray:
        """Class probabilities of the first image from the raw outputs, per the card's activation."""
        scores = self._first_image(outputs, 0).ravel()
        activation = self.card.activation
        if activation == "softmax":
            exp = np.exp(scores - scores.max())
            probs = exp / exp.sum()
        elif activation == "sigmoid":
            with np.errstate(over="ignore"):  # exp(-score) of a very negative score: probability 0
                probs = 1.0 / (1.0 + np.exp(-scores))
            if len(self.card.labels) == 2 and probs.size == 1:
                probs = np.array([1.0 - probs[0], probs[0]])
        else:
            probs = scores
            if not ((probs >= 0) & (probs <= 1)).all():
                raise ModelError(f"{self.path}: model output {self._output_names[0]!r} must hold probabilities in "
                                 "[0, 1] (its card's activation is none)")
        if probs.size != len(self.card.labels):
            raise ModelError(f"{self.path}: model gives {probs.size} scores for {len(self.card.labels)} labels")
        return probs

    def _first_image(self, outputs: list[np.ndarray], index: int) -> np.ndarray:
        """Output ``index`` for the first image as float64; ``ModelError`` unless it holds finite real numbers."""
        name, array = self._output_names[index], np.asarray(outputs[index])
        if array.dtype.kind != "f" or array.ndim == 0 or array.size == 0:
            raise ModelError(f"{self.path}: model output {name!r} must be floating-point numbers shaped (batch, ...), "
                             f"not {array.dtype} {array.shape}")
        first = array[0].astype(np.float64)
        bad = int(first.size - np.count_nonzero(np.isfinite(first)))
        if bad:
            raise ModelError(f"{self.path}: model output {name!r} holds {bad} non-finite value{'s' * (bad != 1)} "
                             "(NaN or infinity)")
        return first


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
