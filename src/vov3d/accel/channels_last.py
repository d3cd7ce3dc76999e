"""The channels-last network: a VoV3D or X3D run in an (N, T, H, W, C) layout with ops that a CPU does fast.

``ChannelsLastNetwork(model)`` computes exactly what ``model`` (a ``VideoClassifier``: VoV3D or X3D)
computes, with the same parameters (it reads ``model``'s weights on every call, so gradients flow to them),
but restructured:

* activations are (N, T, H, W, C) tensors, contiguous: a 1x1x1 conv is one matrix product
  ``(N*T*H*W, C_in) @ (C_in, C_out)`` (``F.linear``), with no layout reorder around it;
* a 1x3x3 conv (the stem's ``conv_xy``, D(2+1)D's depthwise ``b1``) is a 2D conv over the N*T frames
  of a zero-copy channels-last view (oneDNN's fast depthwise kernel);
* a temporal depthwise k x 1 x 1 conv (stem ``conv``, D(2+1)D's ``b2``) is a k-term shift-add over whole
  (H, W, C) frames: contiguous slices, fused into one loop with what follows under compilation;
* BN, when not folded, runs on a zero-copy channels-last view (training: batch statistics, running
  statistics updated as ``nn.BatchNorm3d`` does); SE pools over (T, H, W) and scales the last dim;
* T-OSA's concatenation is kept as one ``torch.cat`` of (N, T, H, W, C) tensors along C; compiled, the
  residual add + ReLU that produce each layer's output write straight into the concatenation buffer.

X3D's 3x3x3 depthwise conv runs as a ``channels_last_3d`` ``conv3d`` on a zero-copy view (oneDNN).
Anything else (the original head's fixed pool) calls the original module on a zero-copy view.

With the kernel library (``lib``; ``prepare_for_training(model, backend="kernels")``), the batch norms that
use batch statistics and what surrounds them (residual add, ReLU, D(2+1)D's depthwise convs, SE, Swish), and
the 1x1x1 convs while gradients are on, run through the training kernels (``kernel_adapters``) instead: the
same maths, fewer passes over memory.

The network's registered submodules are the model's own (``s1``..``s5``, ``head``): its ``state_dict()``,
``parameters()`` and ``train()``/``eval()`` are the model's, each tensor listed once under the model's names.
The per-block runners below are plain objects that hold references to the model's blocks.
"""

from __future__ import annotations

import ctypes
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vov3d.accel.kernel_adapters import (
    batch_norm_act,
    bn_relu_depthwise,
    bn_se_act,
    pointwise_conv,
    temporal_conv_sums,
    training_batch_norm,
)
from vov3d.models.d2plus1d import D2Plus1D
from vov3d.models.head import X3DHead
from vov3d.models.network import VideoClassifier, single_pathway
from vov3d.models.res_block import ResBlock
from vov3d.models.squeeze_excitation import SqueezeExcitation
from vov3d.models.stem import X3DStem
from vov3d.models.temporal_osa import TemporalOSA
from vov3d.models.x3d_bottleneck import X3DBottleneck

# ---------------------------------------------------------------------------------------------
# Ops on (N, T, H, W, C) tensors.


def to_ncdhw(x: torch.Tensor) -> torch.Tensor:
    """Zero-copy (N, C, T, H, W) view (``channels_last_3d`` strides) of an (N, T, H, W, C) tensor."""
    return x.permute(0, 4, 1, 2, 3)


def to_nthwc(x: torch.Tensor) -> torch.Tensor:
    """(N, T, H, W, C) view of an (N, C, T, H, W) tensor (zero-copy when it is ``channels_last_3d``)."""
    return x.permute(0, 2, 3, 4, 1)


def batch_norm(x: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """``bn`` (a ``BatchNorm3d``, or ``Identity`` once folded) applied over the last dim of ``x``."""
    if isinstance(bn, nn.Identity):
        return x
    return to_nthwc(bn(to_ncdhw(x)))


def pointwise(
    x: torch.Tensor | Sequence[torch.Tensor], conv: nn.Conv3d, lib: ctypes.CDLL | None = None
) -> torch.Tensor:
    """A 1x1x1 conv (stride 1) as one matrix product over the last dim of ``x``, or of the concatenation of
    several tensors along it; through the training kernels' products (the concatenation never written)
    when ``lib`` is given, gradients are enabled and the conv has no bias."""
    parts = [x] if isinstance(x, torch.Tensor) else list(x)
    if lib is not None and torch.is_grad_enabled() and conv.bias is None:
        return pointwise_conv(lib, [part.contiguous() for part in parts], conv)
    x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    w = conv.weight
    return F.linear(x, w.reshape(w.shape[0], w.shape[1]), conv.bias)


def spatial_conv(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """A 1 x kh x kw conv (any groups, spatial stride and padding) as a 2D conv over the N*T frames."""
    n, t, h, w, c = x.shape
    frames = x.reshape(n * t, h, w, c).permute(0, 3, 1, 2)  # channels-last (N*T, C, H, W), zero-copy
    weight = conv.weight.squeeze(2)
    y = F.conv2d(frames, weight, conv.bias, conv.stride[1:], conv.padding[1:], conv.dilation[1:], conv.groups)
    y = y.permute(0, 2, 3, 1)
    return y.reshape(n, t, y.shape[1], y.shape[2], y.shape[3])


def temporal_depthwise(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """A depthwise k x 1 x 1 conv (stride 1, zero padding k // 2) as a k-term shift-add over frames."""
    w = conv.weight
    k = w.shape[2]
    pad = conv.padding[0]
    taps = w.reshape(w.shape[0], k)
    t = x.shape[1]
    y = x * taps[:, pad] if conv.bias is None else torch.addcmul(conv.bias, x, taps[:, pad])
    for j in range(k):
        off = j - pad  # y[t] += w_j * x[t + off], zero outside [0, T)
        if off == 0 or abs(off) >= t:
            continue
        if off > 0:
            y[:, : t - off].addcmul_(x[:, off:], taps[:, j])
        else:
            y[:, -off:].addcmul_(x[:, : t + off], taps[:, j])
    return y


def se_gate(pooled: torch.Tensor, se: SqueezeExcitation) -> torch.Tensor:
    """Squeeze-excitation's (N, C) scales from the (N, C) means of its input."""
    s = F.relu(F.linear(pooled, se.fc1.weight.flatten(1), se.fc1.bias))
    return torch.sigmoid(F.linear(s, se.fc2.weight.flatten(1), se.fc2.bias))


def squeeze_excitation(x: torch.Tensor, se: SqueezeExcitation) -> torch.Tensor:
    return x * se_gate(x.mean(dim=(1, 2, 3)), se)[:, None, None, None, :]


def norm_act(
    x: torch.Tensor, bn: nn.Module, lib: ctypes.CDLL | None, residual: torch.Tensor | None = None, relu: bool = False
) -> torch.Tensor:
    """``act(bn(x) + residual)`` over the last dim: through the training kernels when ``lib`` is given and
    ``bn`` uses batch statistics, else torch ops."""
    if lib is not None and training_batch_norm(bn):
        return batch_norm_act(lib, x, bn, residual, relu)
    y = batch_norm(x, bn)
    if residual is not None:
        y = y + residual
    return F.relu(y) if relu else y


# ---------------------------------------------------------------------------------------------
# Blocks. Each holds a reference to the original block (not a submodule) and reads its parameters at every call.


class ChannelsLastStem:
    def __init__(self, stem: X3DStem, lib: ctypes.CDLL | None = None) -> None:
        self.src = stem
        self.lib = lib

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, H, W, 3) -> (N, T, H/2, W/2, C)
        s = self.src
        y = spatial_conv(x, s.conv_xy)
        if self.lib is not None and training_batch_norm(s.bn):
            return bn_se_act(self.lib, *temporal_conv_sums(self.lib, y.contiguous(), s.conv), s.bn, None, "relu")
        return F.relu(batch_norm(temporal_depthwise(y, s.conv), s.bn))


class ChannelsLastD2Plus1D:
    def __init__(self, layer: D2Plus1D, lib: ctypes.CDLL | None = None) -> None:
        self.src = layer
        self.lib = lib

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s, lib = self.src, self.lib
        y = pointwise(x, s.a[0], lib)
        if lib is not None and training_batch_norm(s.a[1]) and training_batch_norm(s.b_bn):
            gate = (lambda pooled: se_gate(pooled, s.se)) if s.se is not None else None
            y = bn_relu_depthwise(lib, y.contiguous(), s.a[1], s.b1)
            y = bn_se_act(lib, *temporal_conv_sums(lib, y, s.b2), s.b_bn, gate, "silu")
        else:
            y = spatial_conv(norm_act(y, s.a[1], lib, relu=True), s.b1)
            y = batch_norm(temporal_depthwise(y, s.b2), s.b_bn)
            if s.se is not None:
                y = squeeze_excitation(y, s.se)
            y = F.silu(y)
        return norm_act(pointwise(y, s.c[0], lib), s.c[1], lib, residual=x if s.has_residual else None, relu=True)


class ChannelsLastTemporalOSA:
    def __init__(self, tosa: TemporalOSA, lib: ctypes.CDLL | None = None) -> None:
        self.src = tosa
        self.lib = lib
        self.layers = [ChannelsLastD2Plus1D(layer, lib) for layer in tosa.layers]

    def __call__(self, x: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        """The block's output, ``relu(shortcut + aggregation)``."""
        outputs = [x] if self.src.include_input else []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        y = pointwise(outputs, self.src.c, self.lib)
        return norm_act(y, self.src.c_bn, self.lib, residual=shortcut, relu=True)


class ChannelsLastX3DBottleneck:
    def __init__(self, block: X3DBottleneck, lib: ctypes.CDLL | None = None) -> None:
        self.src = block
        self.lib = lib

    def __call__(self, x: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        """The block's output, ``relu(shortcut + transform)``."""
        s = self.src
        y = norm_act(pointwise(x, s.a, self.lib), s.a_bn, self.lib, relu=True)
        y = batch_norm(to_nthwc(s.b(to_ncdhw(y))), s.b_bn)  # oneDNN channels_last_3d depthwise conv
        if s.se is not None:
            y = squeeze_excitation(y, s.se)
        return norm_act(pointwise(F.silu(y), s.c, self.lib), s.c_bn, self.lib, residual=shortcut, relu=True)


class ChannelsLastResBlock:
    def __init__(self, block: ResBlock, lib: ctypes.CDLL | None = None) -> None:
        self.src = block
        self.lib = lib
        transform = block.branch2
        if isinstance(transform, TemporalOSA):
            self.transform: ChannelsLastTemporalOSA | ChannelsLastX3DBottleneck = ChannelsLastTemporalOSA(
                transform, lib
            )
        elif isinstance(transform, X3DBottleneck):
            self.transform = ChannelsLastX3DBottleneck(transform, lib)
        else:
            raise TypeError(f"no channels-last version of {type(transform).__name__}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.src
        if s.branch1 is None:
            shortcut = x
        else:
            st, sh, sw = s.branch1.stride
            shortcut = norm_act(pointwise(x[:, ::st, ::sh, ::sw], s.branch1, self.lib), s.branch1_bn, self.lib)
        return self.transform(x, shortcut)


class ChannelsLastHead:
    def __init__(self, head: X3DHead, lib: ctypes.CDLL | None = None) -> None:
        self.src = head
        self.lib = lib

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.src
        if s.pool != "global":
            return s(to_ncdhw(x))
        x = norm_act(pointwise(x, s.conv_5, self.lib), s.conv_5_bn, self.lib, relu=True)
        x = x.mean(dim=(1, 2, 3), keepdim=True)
        x = F.relu(F.linear(x, s.lin_5.weight.flatten(1)))
        if s.dropout is not None:
            x = s.dropout(x)  # on the original's (N, 1, 1, 1, C) shape: the same mask for the same seed
        return s.projection(x).flatten(1)


class ChannelsLastNetwork(nn.Module):
    """``model`` (a VoV3D or X3D ``VideoClassifier``) restructured for a CPU; same outputs, same parameters.

    Its submodules are ``model``'s own (``state_dict()`` and ``parameters()`` are ``model``'s, under the same
    names); ``train()``/``eval()`` set ``model``'s mode. ``lib``: the kernel library
    (``vov3d.ops.library.load_library``); given, the batch norms that use batch statistics (training mode), and
    what the training kernels fuse with them, run through the training kernels (float32 only); else everything
    runs as torch ops.
    """

    def __init__(self, model: VideoClassifier, lib: ctypes.CDLL | None = None) -> None:
        super().__init__()
        if not isinstance(model, VideoClassifier) or not isinstance(model.s1.pathway0_stem, X3DStem):
            raise TypeError(f"expected a VoV3D or X3D VideoClassifier, got {type(model).__name__}")
        for name, child in model.named_children():  # the model's own modules: one state dict, one set of names
            self.add_module(name, child)
        object.__setattr__(self, "model", model)  # a reference, not a submodule (its tensors are listed above)
        self.lib = lib
        self.runners = (
            ChannelsLastStem(model.s1.pathway0_stem, lib),
            [ChannelsLastResBlock(b, lib) for stage in (model.s2, model.s3, model.s4, model.s5) for b in stage],
            ChannelsLastHead(model.head, lib),
        )
        self.train(model.training)

    def train(self, mode: bool = True) -> ChannelsLastNetwork:
        super().train(mode)
        self.model.training = mode
        return self

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        x = single_pathway(x)
        self.model.check_input(x)
        return self.forward_nthwc(x.permute(0, 2, 3, 4, 1).contiguous())

    def forward_nthwc(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from a contiguous (N, T, H, W, 3) clip."""
        stem, blocks, head = self.runners
        x = stem(x)
        for block in blocks:
            x = block(x)
        return head(x)
