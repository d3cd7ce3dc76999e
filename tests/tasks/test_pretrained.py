"""Released weights by name: download through a file:// URL into a private torch.hub cache, cache hit,
checksum record, corrupted cache, offline error, the SS VoV3D-M definition decided from the tensors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import vov3d.pretrained as pretrained
from vov3d.checkpoint import save_checkpoint
from vov3d.labels import load_class_names
from vov3d.models import create_model as create_plain


def publish(server: Path, model_name: str, tag: str, definition: str | None = None, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    """Write a checkpoint of `definition` (default: the tag's model) under the tag's file name, PySlowFast style."""
    weights = pretrained.get_pretrained(model_name, tag)
    torch.manual_seed(seed)
    model = create_plain(definition or model_name, num_classes=weights.num_classes)
    path = save_checkpoint(server / weights.filename, model, epoch=3, cfg="TRAIN:\n  ENABLE: True\n")
    return path, model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_table_lists_every_released_file_with_accuracy_and_licence():
    table = pretrained.format_table()
    assert "vov3d_L_k400_weight.pth" in table and "x3d_M_ssv2.pth" in table
    assert "76.3" in table and "92.9" in table and "CC-BY-NC 4.0" in table
    assert len([line for line in table.splitlines() if line.endswith(".pth")]) == 22
    assert pretrained.list_pretrained("vov3d_l") == [
        "vov3d_l.k400", "vov3d_l.k400_dec2020", "vov3d_l.ssv1_f16", "vov3d_l.ssv1_f32", "vov3d_l.ssv1_f32_finetune",
        "vov3d_l.ssv2_f16", "vov3d_l.ssv2_f32", "vov3d_l.ssv2_f32_finetune"]
    # the ambiguous SS VoV3D-M files are listed under both definitions
    assert "vov3d_m.ssv2_f16" in pretrained.list_pretrained() and "vov3d_m_v2.ssv2_f16" in pretrained.list_pretrained()
    assert pretrained.get_pretrained("x3d_m", "ssv2").filename == "x3d_M_ssv2.pth"  # alias of ssv2_f16
    with pytest.raises(ValueError, match="unknown pretrained tag 'k700'.*k400"):
        pretrained.get_pretrained("vov3d_l", "k700")
    with pytest.raises(ValueError, match="unknown model 'vov3d_xl'"):
        pretrained.create_model("vov3d_xl", pretrained="k400")
    # without weights it stands in for vov3d.models.create_model (num_classes second, positional)
    assert pretrained.create_model("x3d_m", 10).num_classes == 10
    with pytest.raises(TypeError, match="pretrained='k400'"):
        pretrained.create_model("x3d_m", "k400")


def test_download_once_then_cache_hit_and_checksum(hub, tmp_path):
    source, reference = publish(hub, "vov3d_m", "k400")
    model = pretrained.create_model("vov3d_m", pretrained="k400", progress=False)
    assert same_weights(model, reference) and model.num_classes == 400
    cached = Path(torch.hub.get_dir()) / "checkpoints" / "vov3d_M_k400.pth"
    assert cached.is_file() and cached.read_bytes() == source.read_bytes()
    recorded = (cached.parent / "vov3d_M_k400.pth.sha256").read_text().split()[0]
    import hashlib
    assert recorded == hashlib.sha256(source.read_bytes()).hexdigest()

    source.unlink()  # a second call must not download: the server no longer has the file
    again = pretrained.create_model("vov3d_m.k400", progress=False)
    assert same_weights(again, reference)

    fresh = create_plain("vov3d_m", num_classes=400)
    weights = pretrained.load_pretrained(fresh, "k400", progress=False)  # bare tag: the model's definition decides
    assert weights.filename == "vov3d_M_k400.pth" and same_weights(fresh, reference)


def test_fine_tuning_keeps_another_classifier_at_its_initialisation(hub):
    _, reference = publish(hub, "x3d_m", "k400")
    model = pretrained.create_model("x3d_m", pretrained="k400", num_classes=7, progress=False)
    assert model.num_classes == 7
    assert torch.equal(model.state_dict()["s2.pathway0_res0.branch1.weight"],
                       reference.state_dict()["s2.pathway0_res0.branch1.weight"])


def test_corrupted_cache_is_detected_and_downloaded_again(hub, caplog):
    source, reference = publish(hub, "x3d_m", "ssv1_f16")
    pretrained.create_model("x3d_m", pretrained="ssv1_f16", progress=False)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / source.name
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensors: torch.load would not notice
    cached.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="vov3d.pretrained"):
        model = pretrained.create_model("x3d_m", pretrained="ssv1_f16", progress=False)
    assert "corrupted cache file" in caplog.text
    assert same_weights(model, reference) and cached.read_bytes() == source.read_bytes()

    # corrupted again, and now the server is gone: reported, with the URL and the hint
    cached.write_bytes(bytes(data))
    source.unlink()
    with pytest.raises(pretrained.PretrainedError) as info:
        pretrained.create_model("x3d_m", pretrained="ssv1_f16", progress=False)
    text = str(info.value)
    assert "sha256 mismatch" in text and source.as_uri() in text and "--checkpoint FILE" in text


def test_offline_error_names_url_and_how_to_pass_a_local_file(hub):
    url = (hub / "vov3d_L_k400_weight.pth").as_uri()  # never published: the download fails
    with pytest.raises(pretrained.PretrainedError) as info:
        pretrained.create_model("vov3d_l", pretrained="k400", progress=False)
    text = str(info.value)
    assert url in text and "--checkpoint FILE" in text and "vov3d.load_checkpoint(model, FILE)" in text
    assert not (Path(torch.hub.get_dir()) / "checkpoints" / "vov3d_L_k400_weight.pth").exists()


def test_default_url_is_the_original_release(monkeypatch):
    monkeypatch.delenv(pretrained.URL_PREFIX_ENV, raising=False)
    weights = pretrained.get_pretrained("vov3d_l.k400")
    assert pretrained.weights_url(weights) == "https://dl.dropbox.com/s/ah2azwbocxro9qa/vov3d_L_k400_weight.pth"


def test_ss_vov3d_m_file_decides_its_definition(hub, caplog):
    _, reference = publish(hub, "vov3d_m", "ssv2_f16", definition="vov3d_m_v2")
    with caplog.at_level(logging.WARNING, logger="vov3d.pretrained"):
        model = pretrained.create_model("vov3d_m", pretrained="ssv2_f16", progress=False)
    assert "holds a vov3d_m_v2" in caplog.text
    assert same_weights(model, reference) and model.num_classes == 174
    # an already built model of the other definition cannot take it
    with pytest.raises(pretrained.PretrainedError, match="vov3d_m_v2"):
        pretrained.load_pretrained(create_plain("vov3d_m", num_classes=174), "vov3d_m.ssv2_f16", progress=False)


def test_file_of_another_model_is_refused(hub):
    weights = pretrained.get_pretrained("x3d_l", "ssv2_f16")
    save_checkpoint(hub / weights.filename, create_plain("x3d_m", num_classes=174))
    with pytest.raises(pretrained.PretrainedError, match="expected the weights of x3d_l.*holds a x3d_m"):
        pretrained.create_model("x3d_l", pretrained="ssv2_f16", progress=False)


def test_shipped_class_names():
    k400, ssv2 = load_class_names("kinetics400"), load_class_names("ssv2")
    assert len(k400) == 400 and k400[0] == "abseiling" and k400[-1] == "zumba"
    assert len(ssv2) == 174 and ssv2[0] == "Approaching something with your camera"
    with pytest.raises(FileNotFoundError, match="neither a shipped list"):
        load_class_names("no-such-list")
