"""Folding batch norms into the convolutions before them, for inference (spec §2.1's blocks; eval mode).

Every BatchNorm of VoV3D and X3D follows a convolution, possibly after a depthwise one (stem:
``conv_xy -> conv -> bn``; D(2+1)D: ``b1 -> b2 -> b_bn``), so in eval mode each BN is an affine map per
channel that can be folded into the weights and a bias of the conv just before it. ``CONV_BN_PAIRS`` says,
per block type, which ``(conv, bn)`` submodules pair up; the blocks themselves know nothing of folding.
"""

from __future__ import annotations

import torch
from torch import nn

from vov3d.models.d2plus1d import D2Plus1D
from vov3d.models.head import X3DHead
from vov3d.models.res_block import ResBlock
from vov3d.models.stem import X3DStem
from vov3d.models.temporal_osa import TemporalOSA
from vov3d.models.x3d_bottleneck import X3DBottleneck

# (conv, bn) submodule names per block type: each BN normalises that conv's output directly.
# A pair whose conv is None in a given block (ResBlock without a projection shortcut) is skipped.
CONV_BN_PAIRS: dict[type[nn.Module], tuple[tuple[str, str], ...]] = {
    X3DStem: (("conv", "bn"),),
    D2Plus1D: (("a.0", "a.1"), ("b2", "b_bn"), ("c.0", "c.1")),
    TemporalOSA: (("c", "c_bn"),),
    X3DBottleneck: (("a", "a_bn"), ("b", "b_bn"), ("c", "c_bn")),
    ResBlock: (("branch1", "branch1_bn"),),
    X3DHead: (("conv_5", "conv_5_bn"),),
}


def conv_bn_pairs(module: nn.Module) -> tuple[tuple[str, str], ...]:
    """The ``(conv, bn)`` pairs of ``module`` that exist (``CONV_BN_PAIRS`` of its type or nearest base class
    listed; none for other types)."""
    pairs = next((CONV_BN_PAIRS[cls] for cls in type(module).__mro__ if cls in CONV_BN_PAIRS), ())
    return tuple((c, b) for c, b in pairs if getattr(module, c.split(".")[0], None) is not None)


def fold_bn_into_conv(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> nn.Conv3d:
    """A new conv equal to ``bn(conv(x))`` with ``bn`` in eval mode (its running statistics)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1, 1))
        folded.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return folded


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def fold_batchnorms(model: nn.Module) -> int:
    """Fold, in place, every ``(conv, bn)`` pair of ``CONV_BN_PAIRS`` in ``model``'s blocks.

    The BN is replaced by ``nn.Identity``. Returns the number of folded BNs. Eval mode only.
    """
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in conv_bn_pairs(module):
            bn = module.get_submodule(bn_name)
            if isinstance(bn, nn.Identity):
                continue
            _replace(module, conv_name, fold_bn_into_conv(module.get_submodule(conv_name), bn))
            _replace(module, bn_name, nn.Identity())
            folded += 1
    return folded
