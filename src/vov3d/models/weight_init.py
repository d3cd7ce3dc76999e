"""Weight initialisation of the original (spec §5)."""

from __future__ import annotations

from torch import nn


def init_weights(model: nn.Module, fc_init_std: float = 0.01, zero_init_final_bn: bool = True) -> None:
    """Initialise ``model`` in place as the original ``init_weights`` does.

    * Conv3d (depthwise and SE convs included): ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``;
      conv biases 0.
    * BatchNorm3d: bias 0; weight 0 for a block's final BN (``transform_final_bn``) when
      ``zero_init_final_bn``, else 1. Running statistics keep their defaults.
    * Linear: weight ~ N(0, fc_init_std²), bias 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            zero = getattr(m, "transform_final_bn", False) and zero_init_final_bn
            nn.init.constant_(m.weight, 0.0 if zero else 1.0)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=fc_init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
