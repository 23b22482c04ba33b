"""ONNX Runtime latency of a model at batch 1 on one thread; optionally written back into its card.

    python -m radbench.models.latency [MODEL] [--repeats N] [--update-card]

Run it on a quiet machine: other processes on the same cores inflate the figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from radbench.inference.benchmarking.onnx_latency import infer_latency, ort_sessions
from radbench.inference.model import CARD_KEY, DEFAULT_MODEL_PATH
from radbench.models import card as model_card


def latency(path: Path, size: int, repeats: int = 300) -> dict:
    """Median and p90 milliseconds per image over ``repeats`` warm runs (batch 1, one intra-op thread), timed by
    the benchmark's own ONNX Runtime measurement (:func:`inference.benchmarking.onnx_latency.infer_latency`)."""
    sessions = ort_sessions(path, threads=(1,))
    x = np.random.default_rng(0).standard_normal((1, 1, size, size)).astype(np.float32)
    record = infer_latency(sessions, x, str(path), repeats=repeats, warmup=30)[0]
    return {"onnxruntime": ort.__version__, "threads": 1, "batch": 1, "repeats": repeats,
            "median_ms": round(record.median_ms, 3), "p90_ms": round(record.p90_ms, 3),
            "cpu": platform.processor() or platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--update-card", action="store_true",
                        help="store the figure in the model's card and in models/README.md")
    args = parser.parse_args(argv)
    model = onnx.load(str(args.model))
    props = {p.key: p.value for p in model.metadata_props}
    card = json.loads(props[CARD_KEY])
    result = latency(args.model, card["input"]["height"], args.repeats)
    print(json.dumps(result))
    if args.update_card:
        card["latency"] = result
        onnx.helper.set_model_props(model, {**props, CARD_KEY: json.dumps(card, indent=1)})
        onnx.save(model, str(args.model))
        model_card.write_readme(card, Path(model_card.__file__).with_name("README.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
