"""The kernel network: VoV3D and X3D inference on a CPU with vov3d's kernels, no compilation, few passes over memory.

``KernelNetwork(folded_model, lib)`` runs a BN-folded model (``bn_folding.fold_batchnorms``) in the
(N, T, H, W, C) layout of the channels-last network, float32, eagerly, one clip at a time, with the
inference kernels (``vov3d.ops.inference_kernels``, library ``lib``):

* every 1x1x1 conv is one ``gemm`` with what surrounds it fused: SE scaling + Swish on its input, bias,
  residual add and ReLU on its output. T-OSA's aggregation reads the block input and each layer's output
  where they are (``gemm`` takes its input as column blocks), so the concatenation is never written;
* D(2+1)D's two depthwise stages, their bias, the ReLU before them and the Swish after them (layers
  without SE) are one pass (``depthwise_st``), which also returns the per-frame sums from which
  ``se_gate`` computes SE's gate in one call; where the first 1x1x1 conv's output is large, that conv
  runs inside the same pass (``d2plus1d``);
* X3D's 3x3x3 depthwise conv is oneDNN's (a fused kernel of ours for it was slower); its 1x1x1 convs
  use ``gemm`` as VoV3D's do;
* the stem is one pass that reads the (N, C, T, H, W) input as it is; the head's conv_5 is a ``gemm``,
  its pooling and linear layers on one vector torch ops.

So a D(2+1)D layer makes three passes over its activations (1x1x1, depthwise, 1x1x1) where the module
tree makes about twelve, and one call from Python (``inference_kernels.d2plus1d_layer``). Outputs equal the
folded model's to float32 rounding. With ``dtype=torch.bfloat16`` the 1x1x1 convs run as bfloat16 products
(inputs and weights rounded, float32 sums), the rest in float32; the Swish whose result only those products
read is the coarser one (``coarse_silu``, 1.5e-4 relative), the depthwise pass, whose output only the next
product reads, stores it as bfloat16, and in VoV3D so do the stem, the D(2+1)D layers and the blocks (the
``storage_dtype``; see ``KernelNetwork``).
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from vov3d.models.d2plus1d import D2Plus1D
from vov3d.models.head import X3DHead
from vov3d.models.network import VideoClassifier
from vov3d.models.res_block import ResBlock
from vov3d.models.squeeze_excitation import SqueezeExcitation
from vov3d.models.stem import X3DStem
from vov3d.models.temporal_osa import TemporalOSA
from vov3d.models.x3d_bottleneck import X3DBottleneck
from vov3d.ops import inference_kernels
from vov3d.ops.library import LayerWeights, has_bf16


# A D(2+1)D layer whose first 1x1x1 conv would output more than this (per clip) runs it inside the
# depthwise kernel, band by band (``inference_kernels.d2plus1d``), instead of writing it out. On whole models
# (``benchmarks/one_pass_threshold.py``, RESULTS.md §5) 6 MiB was 1.00-1.06x faster than 12 MiB and 9.5 MiB
# for VoV3D-M, v2 and L, float32 and bfloat16: it adds stage 2's stride-1 layers (7.7-9.2 MiB) to the
# stride-2 layers of stages 2-4. Single layers (``benchmarks/kernels.py``) gain 1.7-1.9x at 18-37 MB and
# lose below about 5 MB (the output would stay in cache, and the bands' recomputed halo rows cost more).
ONE_PASS_BYTES = 6 * 2**20


class Pointwise:
    """A folded 1x1x1 conv as the packed (C_in, C_out) matrix and bias that ``inference_kernels.gemm`` takes;
    ``dtype`` bfloat16 packs the matrix for bfloat16 products (``inference_kernels.pack_weight``)."""

    def __init__(self, conv: nn.Conv3d, dtype: torch.dtype = torch.float32) -> None:
        if conv.bias is None:
            raise ValueError("expected a BN-folded model (every conv before a BN has a bias): call fold_batchnorms")
        matrix = conv.weight.detach().reshape(conv.out_channels, conv.in_channels).t()
        self.weight, self.bias = inference_kernels.pack_weight(matrix, conv.bias.detach(), dtype)
        self.weight_rows, self.dim_out = conv.in_channels, conv.out_channels

    def __call__(self, lib: ctypes.CDLL, x: torch.Tensor | list[torch.Tensor], **kw) -> torch.Tensor:
        return inference_kernels.gemm(lib, x, self.weight, self.bias, self.dim_out, **kw)


class SqueezeGate:
    """A squeeze-excitation's weights as ``inference_kernels.se_gate`` takes them: its per-channel gate (C,) of one clip
    from the sums of the activations it squeezes, in one kernel call."""

    def __init__(self, se: SqueezeExcitation) -> None:
        self.w1, self.b1 = se.fc1.weight.detach().flatten(1).t().contiguous(), se.fc1.bias.detach().contiguous()
        self.w2, self.b2 = se.fc2.weight.detach().flatten(1).t().contiguous(), se.fc2.bias.detach().contiguous()

    def __call__(self, lib: ctypes.CDLL, sums: torch.Tensor, count: int) -> torch.Tensor:
        """The gate from (..., C) ``sums`` over ``count`` positions (per frame, or per band and frame)."""
        return inference_kernels.se_gate(lib, sums, count, self.w1, self.b1, self.w2, self.b2)


class Shortcut:
    """A folded ResBlock's shortcut: the input itself, or its strided 1x1x1 projection (``branch1``)."""

    def __init__(self, block: ResBlock, dtype: torch.dtype) -> None:
        self.projection = None if block.branch1 is None else Pointwise(block.branch1, dtype)
        self.stride = None if block.branch1 is None else block.branch1.stride

    def __call__(self, lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
        """The shortcut of one clip ``x`` (1, T, H, W, C) as (T*Ho*Wo, C_out) rows."""
        if self.projection is None:
            return x.view(-1, x.shape[-1])
        st, sh, sw = self.stride
        strided = x[0, ::st, ::sh, ::sw]  # (T', Ho, Wo, C)
        try:  # read in place: rows of Wo pixels, evenly spaced when (T', Ho) flatten (H even)
            rows = strided.view(-1, strided.shape[2], strided.shape[3])
        except RuntimeError:
            rows = strided.reshape(-1, strided.shape[3])
        return self.projection(lib, rows)


class KernelD2Plus1D:
    """One folded ``D2Plus1D`` layer: weights rearranged for the kernels; ``in_dtype`` and ``out_dtype`` those of
    its input (also its residual) and output (bfloat16 only with ``dtype`` bfloat16)."""

    def __init__(
        self, layer: D2Plus1D, dtype: torch.dtype, in_dtype: torch.dtype = torch.float32,
        out_dtype: torch.dtype = torch.float32,
    ) -> None:
        d = layer.b1.out_channels
        self.a = Pointwise(layer.a[0], dtype)
        self.temporal = layer.b2.weight.detach().reshape(d, -1).t().contiguous()  # (kt, D)
        self.spatial = layer.b1.weight.detach().reshape(d, 9).t().contiguous()  # (9, D)
        self.bias = layer.b2.bias.detach()
        self.stride = layer.b1.stride[1]
        self.se = None if layer.se is None else SqueezeGate(layer.se)
        self.c = Pointwise(layer.c[0], dtype)
        self.has_residual = layer.has_residual
        # Without SE the depthwise pass applies Swish. In bfloat16 only the next product reads its output: coarse
        # Swish, and stored as bfloat16 (halves its bytes; without SE the product reads it in place, nothing to
        # round or gather; with SE the product's gather widens it, scales, applies Swish and rounds again).
        bf16 = dtype == torch.bfloat16
        self.depthwise = {"silu_out": self.se is None, "coarse_silu": bf16,
                          "dw_dtype": torch.bfloat16 if bf16 and d % 2 == 0 else torch.float32}
        self.in_dtype, self.out_dtype = in_dtype, out_dtype
        self._weights: LayerWeights | None = None

    def __call__(
        self, lib: ctypes.CDLL, x: torch.Tensor, grid: tuple[int, int, int]
    ) -> tuple[tuple[int, int, int], torch.Tensor]:
        """The layer's output grid and output ((T*Ho*Wo, C_out)) for one clip ``x``: (T*H*W, C_in) rows of a
        (T, H, W) ``grid``, in one kernel call (``inference_kernels.d2plus1d_layer``): the first 1x1x1 conv inside the
        depthwise pass (``d2plus1d``) where its output would exceed ``ONE_PASS_BYTES``, else ``gemm`` then
        ``depthwise_st``; SE's gate; the last 1x1x1 conv with SE + Swish, residual and ReLU."""
        if self._weights is None:  # built on the first call, with the library that checks them
            se = None if self.se is None else (self.se.w1, self.se.b1, self.se.w2, self.se.b2)
            self._weights = inference_kernels.layer_weights(
                lib, (self.a.weight, self.a.bias), (self.temporal, self.spatial, self.bias), self.stride, se,
                (self.c.weight, self.c.bias), (self.a.weight_rows, self.a.dim_out, self.c.dim_out), self.has_residual,
                **self.depthwise, in_dtype=self.in_dtype, out_dtype=self.out_dtype,
            )
        out = inference_kernels.d2plus1d_layer(lib, self._weights, x, grid, ONE_PASS_BYTES)
        t, h, w = grid
        return (t, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1), out

    def __getstate__(self) -> dict:
        """Copies (``copy.deepcopy``) rebuild the kernel's view of their own weights on their first call."""
        return {**self.__dict__, "_weights": None}


class KernelTemporalOSABlock:
    """A folded VoV3D ``ResBlock``: shortcut + T-OSA, then ReLU. ``storage_dtype``: the dtype of its input, its layers'
    outputs and its output (bfloat16 only with ``dtype`` bfloat16; see ``KernelNetwork``)."""

    def __init__(self, block: ResBlock, dtype: torch.dtype, storage_dtype: torch.dtype = torch.float32) -> None:
        tosa: TemporalOSA = block.branch2
        self.layers = [KernelD2Plus1D(layer, dtype, storage_dtype, storage_dtype) for layer in tosa.layers]
        self.include_input = tosa.include_input
        self.aggregate = Pointwise(tosa.c, dtype)
        self.shortcut = Shortcut(block, dtype)
        self.storage_dtype = storage_dtype

    def __call__(self, lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
        _, t, h, w, c_in = x.shape
        x2d = x.view(-1, c_in)
        outputs = [x2d] if self.include_input else []
        inp, grid = x2d, (t, h, w)
        for layer in self.layers:
            grid, out = layer(lib, inp, grid)
            outputs.append(out)
            inp = out
        out = self.aggregate(lib, outputs, residual=self.shortcut(lib, x), relu=True, out_dtype=self.storage_dtype)
        return out.view(1, *grid, -1)


class KernelX3DBlock:
    """A folded X3D ``ResBlock``: 1x1x1 + ReLU, oneDNN's 3x3x3 depthwise conv (a fused kernel of ours for it
    was slower), then SE + Swish fused into the last 1x1x1, whose output adds the shortcut and applies
    the block's ReLU."""

    def __init__(self, block: ResBlock, dtype: torch.dtype) -> None:
        b: X3DBottleneck = block.branch2
        self.a = Pointwise(b.a, dtype)
        self.depthwise = b.b  # folded: a Conv3d with bias, channels_last_3d weights
        self.se = None if b.se is None else SqueezeGate(b.se)
        self.no_scale = torch.ones(b.b.out_channels)
        self.c = Pointwise(b.c, dtype)
        self.shortcut = Shortcut(block, dtype)

    def __call__(self, lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
        _, t, h, w, c_in = x.shape
        x2d = x.view(-1, c_in)
        y = self.a(lib, x2d, relu=True).view(1, t, h, w, -1)
        y = self.depthwise(y.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1).contiguous()  # zero-copy views
        grid = y.shape[1:4]
        count = grid[0] * grid[1] * grid[2]
        scale = self.no_scale if self.se is None else self.se(lib, y.sum(dim=(2, 3)), count)
        out = self.c(lib, y.view(count, -1), scale=scale, residual=self.shortcut(lib, x), relu=True)
        return out.view(1, *grid, -1)


class KernelStem:
    """The folded X3D stem (1x3x3 conv, temporal conv + BN, ReLU) in one pass from the (N, C, T, H, W) input."""

    def __init__(self, stem: X3DStem, out_dtype: torch.dtype = torch.float32) -> None:
        d = stem.conv.out_channels
        self.out_dtype = out_dtype
        self.weight, _ = inference_kernels.pack_weight(stem.conv_xy.weight.detach().reshape(d, -1).t(), torch.zeros(d))
        self.stride = stem.conv_xy.stride[1]
        self.temporal = stem.conv.weight.detach().reshape(d, -1).t().contiguous()  # (kt, D)
        self.bias = stem.conv.bias.detach()

    def __call__(self, lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
        """(1, T, Ho, Wo, D) of one contiguous clip (1, C, T, H, W)."""
        return inference_kernels.stem(lib, x, self.weight, self.temporal, self.bias, self.stride,
                                      out_dtype=self.out_dtype)


class KernelHead:
    """The folded global-pool head: conv_5 (+ BN) + ReLU as one ``gemm``, the average pool, then lin_5 + ReLU
    and the projection (torch ops on one vector; dropout is off in eval mode)."""

    def __init__(self, head: X3DHead, dtype: torch.dtype) -> None:
        self.conv_5 = Pointwise(head.conv_5, dtype)
        self.lin_5 = head.lin_5.weight.detach().flatten(1)
        self.projection = head.projection

    def __call__(self, lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
        """Logits (1, classes) of one clip's (1, T, H, W, C) features."""
        y = self.conv_5(lib, x.view(-1, x.shape[-1]), relu=True).mean(dim=0, keepdim=True)
        return self.projection(F.relu(F.linear(y, self.lin_5)))


def kernel_network_unsupported(model: nn.Module) -> str | None:
    """Why ``KernelNetwork`` cannot run ``model`` (one phrase), or None if it can: it runs a folded float32 VoV3D
    or X3D on the CPU, with the global-pool head."""
    if not isinstance(model, VideoClassifier) or not isinstance(model.s1.pathway0_stem, X3DStem):
        return f"it runs VoV3D and X3D VideoClassifiers, not {type(model).__name__}"
    weight = model.s1.pathway0_stem.conv.weight
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return f"it runs float32 models on the CPU, not {str(weight.dtype).removeprefix('torch.')} on {weight.device}"
    stem = model.s1.pathway0_stem
    if model.head.pool != "global":
        return f"it runs the global-pool head, not the {model.head.pool!r} one"
    if stem.conv.bias is None or stem.conv_xy.bias is not None:
        return "it runs BN-folded models (fold_batchnorms)"
    blocks = [b.branch2 for stage in (model.s2, model.s3, model.s4, model.s5) for b in stage]
    if not all(isinstance(b, (TemporalOSA, X3DBottleneck)) for b in blocks):
        return "it runs T-OSA and X3D bottleneck blocks only"
    return None


def kernel_network_supports(model: nn.Module) -> bool:
    """Whether ``KernelNetwork`` runs ``model`` (``kernel_network_unsupported`` gives the reason when not)."""
    return kernel_network_unsupported(model) is None


class KernelNetwork(nn.Module):
    """A BN-folded VoV3D or X3D ``VideoClassifier`` run with the inference kernels (CPU, no gradients).

    Takes a contiguous float32 (N, C, T, H, W) batch, as the model does. ``dtype`` bfloat16 (where
    ``has_bf16(lib)``) runs the 1x1x1 convs, which hold nearly all the multiply-adds, as
    bfloat16 products with float32 sums: their weights and inputs are rounded to bfloat16, and the
    depthwise convs, stem, SE and head compute in float32. The depthwise output is stored as bfloat16 (SE's
    scaling and Swish then apply to its rounded value, which is rounded again for the product). In a VoV3D
    (every block T-OSA) the activations between the kernels (``storage_dtype``) are stored as bfloat16 too: nearly all
    of them are read only by products, which would round them anyway; the residual adds read them rounded.
    In X3D they stay float32.
    """

    def __init__(self, model: VideoClassifier, lib: ctypes.CDLL, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not kernel_network_supports(model):
            raise ValueError("KernelNetwork needs a BN-folded float32 VoV3D or X3D on the CPU, global-pool head")
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"KernelNetwork: dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        if dtype == torch.bfloat16 and not has_bf16(lib):
            raise ValueError("KernelNetwork: bfloat16 needs a CPU with AVX512_BF16 (has_bf16)")
        self.lib = lib
        self.dtype = dtype
        blocks = [block for stage in (model.s2, model.s3, model.s4, model.s5) for block in stage]
        tosa_only = all(isinstance(b.branch2, TemporalOSA) for b in blocks)
        self.storage_dtype = torch.bfloat16 if dtype == torch.bfloat16 and tosa_only else torch.float32
        self.stem = KernelStem(model.s1.pathway0_stem, self.storage_dtype)
        self.blocks: list[KernelTemporalOSABlock | KernelX3DBlock] = [
            KernelTemporalOSABlock(b, dtype, self.storage_dtype) if isinstance(b.branch2, TemporalOSA)
            else KernelX3DBlock(b, dtype)
            for b in blocks
        ]
        self.head = KernelHead(model.head, dtype)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a contiguous (N, C, T, H, W) batch, one clip at a time: one clip's activations stay in
        the last-level cache far more than a batch's (measured: batch 8 as one batch ran 8-14% slower per
        clip than batch 1)."""
        return torch.cat([self._forward_clip(x[i : i + 1]) for i in range(x.shape[0])])

    def _forward_clip(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.lib, x)
        for block in self.blocks:
            x = block(self.lib, x)
        return self.head(self.lib, x)
