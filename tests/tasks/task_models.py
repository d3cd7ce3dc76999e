"""Models for the task tests whose outputs depend clearly on the input, as a trained model's do."""

from __future__ import annotations

import torch
from torch import nn

from vov3d.models import create_model


def trained_like(name: str = "vov3d_m", num_classes: int = 5, seed: int = 0, std: float = 0.1) -> nn.Module:
    """``name`` with BN statistics measured on varied clips, random BN affine parameters and a wider
    classifier, in eval mode.

    A fresh model predicts almost uniformly whatever the input (zero-initialised final BNs, a
    0.01-std classifier, BN statistics of another distribution), and its BNs at their initial
    statistics would hide a model exported or run in training mode.
    """
    torch.manual_seed(seed)
    model = create_model(name, num_classes=num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.momentum = None  # cumulative average over the calibration batches
                m.reset_running_stats()
                low, high = (0.1, 0.3) if getattr(m, "transform_final_bn", False) else (0.75, 1.25)
                m.weight.uniform_(low, high)  # small residual branches, as trained networks have
                m.bias.uniform_(-0.1, 0.1)
        model.head.projection.weight.normal_(0.0, std)
        model.train()
        for _ in range(2):  # flat colours and noise: statistics that tell inputs apart
            flat = torch.randn(4, 3, 1, 1, 1).expand(4, 3, 4, 32, 32)
            model(torch.cat([flat, torch.randn(4, 3, 4, 32, 32)]))
    return model.eval()
