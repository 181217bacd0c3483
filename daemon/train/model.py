"""The emotion CNN: a small VGG-style network sized for ~1 ms on one CPU thread."""

from __future__ import annotations

import torch
from torch import nn

from .config import DEPTHS


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def stages(widths: tuple[int, ...], depths: tuple[int, ...]) -> list[nn.Module]:
    """Each stage's conv blocks, a 2×2 max-pool after each stage but the last (48 → 24 → 12 → 6 pixels)."""
    layers: list[nn.Module] = []
    channels = 1
    for stage, (width, depth) in enumerate(zip(widths, depths)):
        for _ in range(depth):
            layers.append(conv_bn(channels, width))
            channels = width
        if stage < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
    return layers


class EmotionNet(nn.Module):
    """Conv blocks at 48, 24, 12 and 6 pixels, global average pool, linear head.

    Widths and depths are tuples so that a wider or deeper teacher and the shipped student share code; the
    default depths keep the layer names of the networks trained before depths could change, so old runs load.
    The first block is thin because at 48×48 every channel is expensive.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), n_classes: int = 7, dropout: float = 0.3,
                 depths: tuple[int, ...] = DEPTHS):
        super().__init__()
        self.features = nn.Sequential(*stages(widths, depths))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1], n_classes))
        self.widths, self.depths = widths, depths

    def describe(self) -> str:
        """The architecture as the model card and metadata name it; depths only where they differ from the old ones."""
        depths = "" if self.depths == DEPTHS else f", depths={self.depths}"
        return f"EmotionNet{self.widths}{depths}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
