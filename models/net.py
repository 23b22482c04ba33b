"""The classifier: a small VGG-style CNN sized for CPU latency, with a class-activation-map output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class PneumoniaNet(nn.Module):
    """128 px grey in; four stride-2 stages to an 8 x 8 grid of ``widths[-1]`` features; average pool; linear.

    The linear head on globally pooled features makes class activation maps exact: the logit of class k
    is the spatial mean of ``W[k] . features + b[k]``, so that map shows where the evidence for k lies.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), classes: int = 2, dropout: float = 0.3):
        super().__init__()
        layers = [_conv(1, widths[0], 2)]
        for c_in, c_out in zip(widths, (*widths[1:], widths[-1])):
            layers += [_conv(c_in, c_out), _conv(c_out, c_out, 2)]
        layers.append(_conv(widths[-1], widths[-1]))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x).mean(dim=(2, 3))))


class ServingNet(nn.Module):
    """What is exported: the mean of the members' calibrated logits (``logits / T``) and their mean CAM.

    Outputs ``logits`` (batch, classes) and ``cam`` (batch, classes, h, w), the per-class maps whose spatial
    mean is the uncalibrated logit. Member k sees the input framed at ``zooms[k]`` (:func:`framed`; 1: as given);
    each member's map is cut back to the input's area before the mean, so that the CAM still covers the frame (its
    mean is then the logit only when every zoom is 1).
    """

    def __init__(self, members: list[PneumoniaNet], temperature: float = 1.0, zooms: tuple[float, ...] | None = None):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.zooms = tuple(float(z) for z in zooms) if zooms else (1.0,) * len(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, cams = [], []
        for net, zoom_out in zip(self.members, self.zooms):
            features = net.features(framed(x, zoom_out))
            cam = torch.einsum("kc,bchw->bkhw", net.head.weight, features) + net.head.bias[:, None, None]
            logits.append(cam.mean(dim=(2, 3)))
            cams.append(_zoomed(cam, zoom_out, "border"))
        return torch.stack(logits).mean(dim=0) / self.temperature, torch.stack(cams).mean(dim=0)


def framed(x: torch.Tensor, zoom_out: float) -> torch.Tensor:
    """``x`` (batch, 1, h, w) shrunk about its centre to ``zoom_out`` of its size (bilinear) on a border of each
    image's minimum (its black), as training's random rotations and zoom-outs leave most films; unchanged at 1.

    Why: every training film passes through a random affine with black fill, so plain films sit at the edge of
    what the members saw. One member seeing the film framed at 0.9, the other as given, ranked validation and
    look-reversed films better (models/README.md, "Finding 3")."""
    if zoom_out == 1.0:
        return x
    low = x.amin(dim=(2, 3), keepdim=True)
    return _zoomed(x - low, 1.0 / zoom_out, "zeros") + low


def _zoomed(x: torch.Tensor, scale: float, padding: str) -> torch.Tensor:
    """``x`` resampled (bilinear) at ``scale`` times each output position's offset from the centre: above 1 the
    content shrinks, below 1 the centre ``scale`` of ``x`` fills the output; ``padding`` where it reads outside.
    The grid is built by hand: it is what ``affine_grid`` makes, which ONNX opset 18 cannot export."""
    if scale == 1.0:
        return x
    h, w = x.shape[2:]
    ys, xs = ((torch.arange(n, dtype=x.dtype) * 2 + 1) / n - 1 for n in (h, w))  # pixel centres in [-1, 1]
    grid = torch.stack(torch.meshgrid(xs * scale, ys * scale, indexing="xy"), dim=-1)
    return F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode=padding,
                         align_corners=False)
