"""An independent, functional implementation of the original forward pass, written from spec §1–4.

It reads only the state dict and applies ``torch.nn.functional`` ops in the spec's order, so that the
module implementation in ``vov3d.models`` can be checked against it in float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-5


def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        training=False, eps=EPS)


def _conv(x, sd, p, stride=(1, 1, 1), padding=(0, 0, 0)):
    w = sd[p + ".weight"]
    groups = w.shape[0] if w.shape[1] == 1 and x.shape[1] > 1 else 1
    return F.conv3d(x, w, sd.get(p + ".bias"), stride, padding, 1, groups)


def _se(x, sd, p):
    s = x.mean(dim=(2, 3, 4), keepdim=True)
    s = torch.relu(_conv(s, sd, p + ".fc1"))
    return x * torch.sigmoid(_conv(s, sd, p + ".fc2"))


def _swish(x):
    return x * torch.sigmoid(x)


def _stem(x, sd):
    p = "s1.pathway0_stem"
    x = _conv(x, sd, p + ".conv_xy", (1, 2, 2), (0, 1, 1))
    x = _conv(x, sd, p + ".conv", padding=(2, 0, 0))
    return torch.relu(_bn(x, sd, p + ".bn"))


def _d2plus1d(x, sd, p, stride, j):
    y = torch.relu(_bn(_conv(x, sd, p + ".a.0"), sd, p + ".a.1"))
    y = _conv(y, sd, p + ".b1", (1, stride, stride), (0, 1, 1))
    y = _conv(y, sd, p + ".b2", padding=(1, 0, 0))
    y = _bn(y, sd, p + ".b_bn")
    if j % 2 == 0:
        y = _se(y, sd, p + ".se")
    y = _bn(_conv(_swish(y), sd, p + ".c.0"), sd, p + ".c.1")
    if x.shape[1] == y.shape[1] and stride != 2:
        y = y + x
    return torch.relu(y)


def _tosa(x, sd, p, stride):
    n = 1 + max(int(k.split(".layers.")[1].split(".")[0]) for k in sd if k.startswith(p + ".layers."))
    outs, y = [], x
    for j in range(n):
        y = _d2plus1d(y, sd, f"{p}.layers.{j}", stride if j == 0 else 1, j)
        outs.append(y)
    cat = torch.cat(([x] if stride == 1 else []) + outs, dim=1)
    return _bn(_conv(cat, sd, p + ".c"), sd, p + ".c_bn")


def _x3d_bottleneck(x, sd, p, stride, block_index):
    y = torch.relu(_bn(_conv(x, sd, p + ".a"), sd, p + ".a_bn"))
    y = _bn(_conv(y, sd, p + ".b", (1, stride, stride), (1, 1, 1)), sd, p + ".b_bn")
    if block_index % 2 == 0:
        y = _se(y, sd, p + ".se")
    return _bn(_conv(_swish(y), sd, p + ".c"), sd, p + ".c_bn")


def _head(x, sd, pool_size, training):
    x = torch.relu(_bn(_conv(x, sd, "head.conv_5"), sd, "head.conv_5_bn"))
    x = F.avg_pool3d(x, pool_size, stride=1) if pool_size else x.mean(dim=(2, 3, 4), keepdim=True)
    x = torch.relu(_conv(x, sd, "head.lin_5"))
    x = x.permute(0, 2, 3, 4, 1)
    x = F.linear(x, sd["head.projection.weight"], sd["head.projection.bias"])
    if not training and pool_size:
        return x.softmax(dim=4).mean(dim=(1, 2, 3))
    return x.mean(dim=(1, 2, 3))


def reference_forward(x, sd, family, pool_size=None, training=False):
    """Eval-mode (or dropout-free train-mode head) forward of a VoV3D ("vov3d") or X3D ("x3d") state dict."""
    x = _stem(x, sd)
    for s in range(2, 6):
        i = 0
        while f"s{s}.pathway0_res{i}.branch2.c.weight" in sd:
            p = f"s{s}.pathway0_res{i}"
            stride = 2 if i == 0 else 1
            if family == "vov3d":
                f = _tosa(x, sd, p + ".branch2", stride)
            else:
                f = _x3d_bottleneck(x, sd, p + ".branch2", stride, i)
            sc = _bn(_conv(x, sd, p + ".branch1", (1, stride, stride)), sd, p + ".branch1_bn") \
                if p + ".branch1.weight" in sd else x
            x = torch.relu(sc + f)
            i += 1
    return _head(x, sd, pool_size, training)
