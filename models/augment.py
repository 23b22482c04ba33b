"""Training-time augmentation on equalized images: geometry, acquisition-like intensity changes, occlusion."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from radbench.inference.backends.resample import axis_matrix
from radbench.models.dataset import LABELS

PROFILES = {
    # 1.0.0: moderate geometry and intensity changes
    "v1": {"rotation": 10.0, "zoom_in": 1.25, "zoom_out": 1.25, "aspect": 1.1, "shift": 0.08, "gamma": 0.4,
           "contrast": 0.25, "brightness": 0.08},
    # 2.0.0: random resized crops (down to 0.39 of the area) and zoom-outs with a black border, so that the field
    # of view (tight crops are far more common among the pneumonia films) stops telling the class; stronger
    # exposure curves
    "v2": {"rotation": 12.0, "zoom_in": 1.6, "zoom_out": 1.4, "aspect": 1.25, "shift": 0.12, "gamma": 0.6,
           "contrast": 0.35, "brightness": 0.1},
}
# v1 with framing drawn by class: normal films zoomed in further (to 1.5x), pneumonia films zoomed out further (to
# 1/1.5), so that a tight field of view (common among the bacterial-pneumonia films) stops telling the class
PROFILES["v1f"] = {**PROFILES["v1"], "zoom_by_class": ((1.25, 1.5), (1.5, 1.25))}  # (out, in) per label


def describe(profile: str) -> str:
    """The augmentation of ``profile`` in words (for the card)."""
    a = PROFILES[profile]
    if "zoom_by_class" in a:
        ranges = (f"{label} out to 1/{out:g} and in to {into:g}x" for label, (out, into) in zip(LABELS,
                                                                                                a["zoom_by_class"]))
        zoom = f"zoom by class: {', '.join(ranges)} (black border; random resized crop)"
    else:
        zoom = f"zoom out to 1/{a['zoom_out']:g} (black border) and in to {a['zoom_in']:g}x (random resized crop)"
    return (f"rotation +-{a['rotation']:g} deg, {zoom}, aspect 1/{a['aspect']:g}-{a['aspect']:g}, shift "
            f"+-{a['shift']:.0%}, gamma exp(+-{a['gamma']:g}), contrast {1 - a['contrast']:g}-{1 + a['contrast']:g}, "
            f"brightness +-{a['brightness']:g}, blur or sharpen (p 0.25 each), Gaussian noise sigma <= 0.03, random "
            "erasing (p 0.3); on equalized images")


class Augmenter:
    """Random affine (rotation, zoom, aspect, shift) at full size, the pipeline's exact area resize to the
    model size, then gamma, contrast and brightness, blur or sharpening, noise and random erasing.

    Input: (B, 1, S, S) equalized images in [0, 1] and their labels (a profile with ``zoom_by_class`` draws each
    film's zoom from its label's range). Output: normalized (B, 1, size, size) model inputs.
    """

    def __init__(self, source: int, size: int, mean: float, std: float, generator: torch.Generator,
                 profile: str = "v2"):
        resize = torch.tensor(axis_matrix(source, size), dtype=torch.float32)
        self.rows, self.cols_t = resize, resize.T.contiguous()
        self.mean, self.std, self.gen = mean, std, generator
        self.a = PROFILES[profile]

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.gen)

    def __call__(self, batch: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b = batch.shape[0]
        a = self.a
        angle = self._u(b, -math.radians(a["rotation"]), math.radians(a["rotation"]))
        zoom = self.zooms(labels)
        aspect = torch.exp(self._u(b, -math.log(a["aspect"]), math.log(a["aspect"])))
        sx, sy = aspect.sqrt() / zoom, 1 / (aspect.sqrt() * zoom)
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack([torch.stack([cos * sx, -sin * sy, self._u(b, -a["shift"], a["shift"])], 1),
                             torch.stack([sin * sx, cos * sy, self._u(b, -a["shift"], a["shift"])], 1)], 1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        x = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = self.rows @ x @ self.cols_t

        per_image = (b, 1, 1, 1)
        x = x.clamp(0, 1) ** torch.exp(self._u(b, -a["gamma"], a["gamma"])).view(per_image)
        x = ((x - 0.5) * self._u(b, 1 - a["contrast"], 1 + a["contrast"]).view(per_image) + 0.5
             + self._u(b, -a["brightness"], a["brightness"]).view(per_image))
        blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), _gaussian(float(self._u(1, 0.5, 1.3))))
        choice = torch.rand(b, generator=self.gen).view(per_image)
        sharpened = x + self._u(b, 0.3, 1.0).view(per_image) * (x - blurred)
        x = torch.where(choice < 0.25, blurred, torch.where(choice < 0.5, sharpened, x))
        x = x + torch.randn(x.shape, generator=self.gen) * self._u(b, 0.0, 0.03).view(per_image)
        x = self._erase(x)
        return (x.clamp(0, 1) - self.mean) / self.std

    def zooms(self, labels: torch.Tensor) -> torch.Tensor:
        """Each film's zoom (above 1: in), log-uniform in its profile's range, or its label's with ``zoom_by_class``."""
        a = self.a
        zoom_out, zoom_in = (torch.tensor(a["zoom_by_class"])[labels].T if "zoom_by_class" in a  # float32
                             else torch.tensor([a["zoom_out"], a["zoom_in"]], dtype=torch.float64))  # as v1 always drew
        return torch.exp(self._u(len(labels), -zoom_out.log(), zoom_in.log()))

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
