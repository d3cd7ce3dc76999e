"""The state dicts are the original's, key for key, shape for shape, in order (spec/layouts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vov3d

LAYOUTS = Path(__file__).resolve().parents[1] / "layouts"


@pytest.mark.parametrize("name", ["vov3d_m", "vov3d_m_v2", "vov3d_l", "x3d_m", "x3d_l"])
def test_state_dict_equals_original_layout(name):
    layout = json.loads((LAYOUTS / f"{name}.json").read_text())
    model = vov3d.create_model(name, num_classes=layout["num_classes"])
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(k, shape) for k, shape in layout["state_dict"]]
    assert vov3d.count_parameters(model) == layout["num_parameters"]


def test_registry_lists_every_layout_and_rejects_unknown_names():
    assert vov3d.list_models() == sorted(p.stem for p in LAYOUTS.glob("*.json"))
    with pytest.raises(ValueError, match="available models: vov3d_l, vov3d_m, vov3d_m_v2, x3d_l, x3d_m"):
        vov3d.create_model("vov3d_xl")


@pytest.mark.parametrize(
    "name, classes, params",
    [("vov3d_m", 174, 3_337_374), ("vov3d_m_v2", 174, 3_204_286), ("vov3d_l", 174, 5_834_094),
     ("x3d_m", 174, 3_331_248), ("x3d_l", 174, 5_690_358)],
)
def test_parameter_counts_with_174_classes(name, classes, params):
    assert vov3d.count_parameters(vov3d.create_model(name, num_classes=classes)) == params


def test_builders_take_explicit_sizes():
    from vov3d.models import build_vov3d

    small = build_vov3d(num_classes=10, inner_channels=16, blocks=(1, 1, 1, 1), layers_per_block=2, head_dim=64)
    keys = small.state_dict().keys()
    assert "s5.pathway0_res0.branch2.layers.1.c.0.weight" in keys
    assert "s5.pathway0_res0.branch2.layers.2.a.0.weight" not in keys
    assert small.s5.pathway0_res0.branch2.c.weight.shape == (64, 2 * 64, 1, 1, 1)  # 2 layers x D/2, stride 2
    assert small.head.projection.weight.shape == (10, 64)
