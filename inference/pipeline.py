"""The staged pipeline: decode -> rescale -> window -> equalize -> resize -> normalize -> infer -> postprocess
-> heatmap."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from radbench.inference.backends import Backend, get_backend
from radbench.inference.backends.contract import Cancel, stop_if
from radbench.inference.benchmarking.numba_compile import first_use_message, warm
from radbench.inference.errors import ScanError
from radbench.inference.heatmap import heatmap
from radbench.inference.loading import load_scan
from radbench.inference.loading.decoders import check_forced
from radbench.inference.model import Model
from radbench.inference.ood import domain_warnings, withheld_reason
from radbench.inference.preprocessing import SKIPPABLE, Observer, PreprocessSpec, preprocess
from radbench.inference.scan import Scan
from radbench.inference.threads import Threads, current_threads
from radbench.inference.timing import StageClock, Timings

#: Every stage a run can time, in order ("equalize" is skipped when the model card turns it off).
PIPELINE_STAGES = ("decode", "rescale", "window", "equalize", "resize", "normalize", "infer", "postprocess",
                   "heatmap")


@dataclass(frozen=True)
class Prediction:
    """The immutable result of one run. Carries no patient-identifying values."""

    path: Path
    frame: int
    frame_count: int
    label: str
    probabilities: Mapping[str, float]
    positive_label: str | None  # with ``threshold``: the card's decision rule that chose ``label``
    threshold: float | None
    tensor: np.ndarray  # the preprocessed model input, (1, channels, height, width) float32, read-only
    warnings: tuple[str, ...]
    ood_warnings: tuple[str, ...]  # how the input differs from the model's training data (empty: it does not)
    withheld: str | None  # why no verdict may be shown (outside the card's domain); front ends then show no label
    heatmap: np.ndarray | None  # where the model looked for ``label``: (rows, cols) of the frame, [0, 1], read-only
    backend: str
    timings: Timings
    compile_ms: float  # Numba's first-use compile (or cache load) in this run; never inside a stage time
    compile_source: str  # what Numba did in that time: "compiled", "loaded from on-disk cache", ...
    model: str
    modality: str
    decoder: str
    decoder_threads: int  # the threads the decoder ran on
    fast_decode: str  # with fast_decode: "1/8" (decoded at 1/8 of each side) or "no: <why>"; else ""
    #: The threads it ran on: Numba's kernels (None for a backend without them) and ONNX Runtime's infer.
    threads: Threads
    #: The steps of :data:`~inference.preprocessing.SKIPPABLE` this run left out (a what-if run: not the input the
    #: model was made for); a step the file does not have (no window, not MONOCHROME1) is not listed.
    skipped: tuple[str, ...] = ()


class Pipeline:
    """Preprocess with one named backend and classify with one model; reusable across many files.

    ``decoder`` forces one decoder for the files it reads (:data:`inference.loading.DECODER_NAMES`); ``fast_decode``
    lets a JPEG 2000 frame be decoded at the coarsest resolution level that still covers the model's input (the
    equalize stage then sees that level, not the full frame: ``radbench batch --fast-decode``). ``announce`` is
    called with :func:`~inference.benchmarking.numba_compile.first_use_message` before a run's Numba warm-up that
    is expected to compile (not before a load from Numba's on-disk cache).
    """

    def __init__(self, model: Model, backend: str | Backend, *, decoder: str | None = None, fast_decode: bool = False,
                 announce: Callable[[str], None] | None = None):
        self.model = model
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.decoder, self.fast_decode, self.announce = check_forced(decoder), fast_decode, announce

    def run(self, source: str | Path | Scan, *, frame: int | None = None, cancel: Cancel = None,
            within: Callable[[], AbstractContextManager] = nullcontext, skip: Collection[str] = (),
            observe: Observer | None = None) -> Prediction:
        """Run every stage on one frame of a file (decode timed) or of an already loaded scan (not timed).

        Raises ``ScanError`` for an unreadable file or a bad frame index, ``BackendError`` if the backend
        refuses, ``Cancelled`` if ``cancel()`` turned True. It runs on the threads that
        :func:`inference.threads.compute_threads` set on the calling thread, and says so in ``threads``. ``within``
        makes the context the file's work runs in (``radbench batch``: a memory ceiling), entered for decoding and
        again for the later stages, but not around Numba's warm-up: compiling is not the file's work, and an out of
        memory inside LLVM would end the process.

        ``skip`` leaves steps out (:meth:`~inference.preprocessing.PreprocessSpec.without`; ``ValueError`` for an
        unknown one). ``observe`` is called with each stage's name and output, outside its time: "decode" (the
        frame), the compute stages, "heatmap".
        """
        clock = StageClock()
        card, backend = self.model.card, self.backend
        threads = current_threads(numba=backend.compiles)
        self.model.session_for()  # made (on first use of this thread count) before any stage is timed
        if isinstance(source, Scan):
            scan = source
            image = _frame_of(scan, frame)
        else:
            cover = (card.input_height, card.input_width) if self.fast_decode else None
            with within(), clock.stage("decode"):
                scan = load_scan(source, decoder=self.decoder, cover=cover)
                image = _frame_of(scan, frame)
        if observe is not None:
            observe("decode", image)
        full_spec = PreprocessSpec.from_card(card, scan)
        spec = full_spec.without(skip)
        skipped = tuple(step for step in SKIPPABLE if step in skip and full_spec.without([step]) != full_spec)
        if self.announce is not None and not backend.is_warm(image.dtype, spec=spec) and (
                message := first_use_message([image.dtype], spec)):
            self.announce(message)
        compiled = warm(backend, [image.dtype], spec)  # what this run calls, for this dtype: apart from stage times
        with within():
            tensor = preprocess(image, spec, backend, clock=clock, cancel=cancel, observe=observe)
            with clock.stage("infer"):
                outputs = self.model.infer(tensor)
            with clock.stage("postprocess"):
                probs = self.model.probabilities(outputs)
                label = card.decide(probs)
                maps = self.model.class_maps(outputs)
                ood = tuple(domain_warnings(scan, tensor, card.domain))
            heat = None
            if maps is not None:
                stop_if(cancel)
                with clock.stage("heatmap"):
                    heat = heatmap(maps, card.labels.index(label), image.shape, backend.resize)
                heat.flags.writeable = False
                if observe is not None:
                    observe("heatmap", heat)
        tensor.flags.writeable = False
        return Prediction(
            path=scan.path,
            frame=scan.frame_index(frame),
            frame_count=scan.frame_count,
            label=label,
            probabilities=MappingProxyType({lbl: float(p) for lbl, p in zip(card.labels, probs)}),
            positive_label=card.positive_label,
            threshold=card.threshold,
            tensor=tensor,
            warnings=_warnings(scan, self.model),
            ood_warnings=ood,
            withheld=withheld_reason(scan, tensor, card.domain),
            heatmap=heat,
            backend=backend.name,
            timings=clock.timings(),
            compile_ms=compiled.ms,
            compile_source=compiled.source,
            model=self.model.title,
            modality=scan.modality,
            decoder=scan.decoder,
            decoder_threads=scan.decoder_threads,
            fast_decode=scan.fast_decode,
            threads=threads,
            skipped=skipped,
        )


def _frame_of(scan: Scan, frame: int | None) -> np.ndarray:
    try:
        return scan.grey_frame(frame)
    except IndexError as exc:
        raise ScanError(scan.path, str(exc)) from None


def _warnings(scan: Scan, model: Model) -> tuple[str, ...]:
    warnings = list(scan.warnings)
    if model.card.untrained:
        warnings.append(f"model {model.card.name} is an UNTRAINED placeholder: its prediction means nothing")
    if scan.is_color:
        warnings.append("colour image converted to grey (BT.601 luma: 0.299 R + 0.587 G + 0.114 B)")
    return tuple(warnings)
