"""The emotion CNN: a small VGG-style network sized for ~1 ms on one CPU thread."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class EmotionNet(nn.Module):
    """Conv blocks at 48, 24, 12 and 6 pixels, global average pool, linear head.

    Widths are a tuple so that a wider teacher and the shipped student share code.
    The first block is thin because at 48×48 every channel is expensive.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), n_classes: int = 7, dropout: float = 0.3):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            conv_bn(1, w1), nn.MaxPool2d(2),                      # 24
            conv_bn(w1, w2), nn.MaxPool2d(2),                     # 12
            conv_bn(w2, w3), conv_bn(w3, w3), nn.MaxPool2d(2),    # 6
            conv_bn(w3, w4), conv_bn(w4, w4),                     # 6
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(w4, n_classes))
        self.widths = widths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
