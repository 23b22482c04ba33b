"""Training-time augmentation on equalized images: geometry, acquisition-like intensity changes, occlusion."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from radbench.inference.backends.resample import axis_matrix


class Augmenter:
    """Random affine (rotation, zoom, aspect, shift) at full size, the pipeline's exact area resize to the
    model size, then gamma, contrast and brightness, blur or sharpening, noise and random erasing.

    Input: (B, 1, S, S) equalized images in [0, 1]. Output: normalized (B, 1, size, size) model inputs.
    """

    def __init__(self, source: int, size: int, mean: float, std: float, generator: torch.Generator):
        resize = torch.tensor(axis_matrix(source, size), dtype=torch.float32)
        self.rows, self.cols_t = resize, resize.T.contiguous()
        self.mean, self.std, self.gen = mean, std, generator

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.gen)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        b = batch.shape[0]
        angle = self._u(b, -math.radians(10), math.radians(10))
        zoom = torch.exp(self._u(b, -math.log(1.25), math.log(1.25)))
        aspect = torch.exp(self._u(b, -math.log(1.1), math.log(1.1)))
        sx, sy = aspect.sqrt() / zoom, 1 / (aspect.sqrt() * zoom)
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack([torch.stack([cos * sx, -sin * sy, self._u(b, -0.08, 0.08)], 1),
                             torch.stack([sin * sx, cos * sy, self._u(b, -0.08, 0.08)], 1)], 1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        x = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = self.rows @ x @ self.cols_t

        per_image = (b, 1, 1, 1)
        x = x.clamp(0, 1) ** torch.exp(self._u(b, -0.4, 0.4)).view(per_image)
        x = (x - 0.5) * self._u(b, 0.75, 1.25).view(per_image) + 0.5 + self._u(b, -0.08, 0.08).view(per_image)
        blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), _gaussian(float(self._u(1, 0.5, 1.3))))
        choice = torch.rand(b, generator=self.gen).view(per_image)
        sharpened = x + self._u(b, 0.3, 1.0).view(per_image) * (x - blurred)
        x = torch.where(choice < 0.25, blurred, torch.where(choice < 0.5, sharpened, x))
        x = x + torch.randn(x.shape, generator=self.gen) * self._u(b, 0.0, 0.03).view(per_image)
        x = self._erase(x)
        return (x.clamp(0, 1) - self.mean) / self.std

    def _erase(self, x: torch.Tensor, p: float = 0.3) -> torch.Tensor:
        size = x.shape[-1]
        for i in torch.nonzero(torch.rand(x.shape[0], generator=self.gen) < p).flatten().tolist():
            h, w = (int(v) for v in self._u(2, 0.1 * size, 0.3 * size))
            top, left = (int(v) for v in self._u(2, 0, size - max(h, w)))
            x[i, :, top:top + h, left:left + w] = float(self._u(1, 0, 1))
        return x


def _gaussian(sigma: float) -> torch.Tensor:
    r = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    k = k / k.sum()
    return (k[:, None] * k[None, :]).view(1, 1, 5, 5)
