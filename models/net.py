"""The classifier: a small VGG-style CNN sized for CPU latency, with a class-activation-map output."""

from __future__ import annotations

import torch
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
    mean is the uncalibrated logit.
    """

    def __init__(self, members: list[PneumoniaNet], temperature: float = 1.0):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cams = []
        for net in self.members:
            features = net.features(x)
            cams.append(torch.einsum("kc,bchw->bkhw", net.head.weight, features) + net.head.bias[:, None, None])
        cam = torch.stack(cams).mean(dim=0)
        return cam.mean(dim=(2, 3)) / self.temperature, cam
