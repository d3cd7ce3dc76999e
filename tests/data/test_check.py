"""check_splits / check_dataset (what `vov3d data check` prints), called from Python."""

from __future__ import annotations

import shutil

from vov3d.data.check import check_splits


def test_check_splits_lists_each_bad_file_once(kinetics_dir, tmp_path):
    shutil.copy(kinetics_dir / "videos" / "h264.mp4", tmp_path / "h264.mp4")
    (tmp_path / "val.csv").write_text("h264.mp4 0\nnothing.mp4 1\nh264.mp4 2\n")  # relative to the csv: no prefix
    (summary,) = check_splits("kinetics", tmp_path, ["val"], batch_size=2, num_workers=0)
    assert (summary["split"], summary["videos"], summary["items"], summary["views_per_video"]) == ("val", 3, 3, 1)
    assert summary["clip_shape"] == [3, 16, 224, 224] and summary["bad_videos"] == 1
    assert summary["bad"] == [{"path": str(tmp_path / "nothing.mp4"), "error": f"{tmp_path / 'nothing.mp4'}: file not found"}]
    assert 0 < summary["seconds"] < 60 and summary["clips_per_second"] > 0
