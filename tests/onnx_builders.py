"""Tiny hand-built ONNX classifiers for tests: an UNTRAINED placeholder with a RadBench card, and variants.

It averages the normalized image and maps that one number to two logits, so its "predictions" follow
overall brightness and mean nothing; tests use it where the graph must be known exactly (wrong input,
no card, malformed card, an untrained model's warning).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HEIGHT = WIDTH = 224
CARD = {
    "name": "radbench-placeholder",
    "version": "0.1.0",
    "untrained": True,
    "labels": ["NORMAL", "PNEUMONIA"],
    "input": {"height": HEIGHT, "width": WIDTH, "channels": 1},
    "normalization": {"mean": [0.5], "std": [0.25]},
    "activation": "softmax",
    "preprocessing": {"equalize": True},
    "intended_use": "UNTRAINED placeholder for plumbing tests; its outputs are meaningless. "
                    "Education and demonstration only, not for clinical use.",
    "training_data": "none",
    "metrics": {},
}


def build(card: dict | None = CARD, input_shape: tuple = ("batch", 1, HEIGHT, WIDTH)) -> onnx.ModelProto:
    """The placeholder graph with ``card`` embedded (``None``: no card); tests build variants with it."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, list(input_shape))
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])
    axes = numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes")
    weight = numpy_helper.from_array(np.array([[-4.0, 4.0]], dtype=np.float32), "weight")
    bias = numpy_helper.from_array(np.zeros(2, dtype=np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=1),
            helper.make_node("Flatten", ["mean"], ["mean_flat"], axis=1),
            helper.make_node("Gemm", ["mean_flat", "weight", "bias"], ["logits"]),
        ],
        "placeholder",
        [image],
        [logits],
        initializer=[axes, weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="radbench")
    model.ir_version = 8
    if card is not None:
        helper.set_model_props(model, {"radbench.card": json.dumps(card, indent=1)})
    onnx.checker.check_model(model)
    return model

