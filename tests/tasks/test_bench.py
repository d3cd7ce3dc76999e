"""`vov3d bench` at a tiny size: the table's rows and ratio columns, JSON, the data loader's clips/s."""

from __future__ import annotations

import json

import pytest

from task_media import write_video
from vov3d.engine import bench

TINY = ["--frames", "4", "--size", "32", "--iters", "2", "--warmup", "1", "--batch", "1", "4"]


def test_models_side_by_side_json(capsys):
    assert bench.main(["--models", "vov3d_m", "x3d_m", *TINY, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {(r["model"], r["backend"]): r for r in doc["rows"]}
    assert list(rows) == [("vov3d_m", "eager"), ("vov3d_m", "prepared"), ("x3d_m", "eager"), ("x3d_m", "prepared")]
    for (model, backend), row in rows.items():
        seconds = row["seconds"]
        assert set(seconds) == {"1", "4"} and all(s > 0 for s in seconds.values())
        eager = rows[(model, "eager")]["seconds"]
        for b in ("1", "4"):  # the ratios are those of the medians reported in the same run
            assert row["x_eager"][b] == pytest.approx(eager[b] / seconds[b])
            if model == "vov3d_m":
                assert row["x_x3d"][b] == pytest.approx(rows[("x3d_m", backend)]["seconds"][b] / seconds[b])
            else:
                assert row["x_x3d"][b] is None


def test_table_and_unavailable_backend(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    assert bench.main(["--models", "x3d_m", *TINY, "--backends", "eager,onnxruntime"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["model", "backend", "b1", "ms", "b1", "x", "eager", "b1", "x", "X3D",
                                "b4", "clips/s", "b4", "x", "eager", "b4", "x", "X3D"]
    eager = lines[2].split()
    assert eager[:2] == ["x3d_m", "eager"] and eager[3] == "1.00" and eager[4] == "-" and eager[6] == "1.00"
    assert lines[3].startswith("x3d_m") and "skipped: onnx/onnxruntime not installed" in lines[3]


def test_bad_arguments(capsys):
    assert bench.main(["--models", "x3d_m", *TINY, "--backends", "eager,tensorrt"]) == 2
    assert "unknown backend tensorrt" in capsys.readouterr().err
    assert bench.main(["--models", "x3d_xl", *TINY]) == 1
    assert "unknown model 'x3d_xl'" in capsys.readouterr().err
    assert bench.main(["--data", "/no/such/config.yaml"]) == 1
    assert "neither a config file nor a dataset folder" in capsys.readouterr().err


def test_data_loader_clips_per_second(tmp_path, capsys):
    lines = []
    for i in range(4):
        write_video(tmp_path / f"v{i}.mp4", frames=8, width=48, height=40)
        lines.append(f"{tmp_path / f'v{i}.mp4'} {i % 2}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    assert bench.main(["--data", str(tmp_path), "--frames", "4", "--size", "32", "--workers", "0",
                       "--data-batch", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["videos"] == 4 and doc["batches"] == 2 and doc["batch_size"] == 2 and doc["clips_per_second"] > 0
