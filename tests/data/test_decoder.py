"""PyAV decoding of real small files: every container/codec, frame choice by time, seeking."""

from __future__ import annotations

import av
import numpy as np
import pytest

from media_files import CODECS, level, write_video
from vov3d.data import decoder
from vov3d.data.errors import MediaError

INDICES = [0, 1, 5, 5, 39, 20, 38, 13]  # unsorted, repeated, both ends


def grey_levels(frames: np.ndarray) -> np.ndarray:
    """Mean of the flat bottom-right quadrant of each frame."""
    h, w = frames.shape[1:3]
    return frames[:, h // 2 + 2 :, w // 2 + 2 :].mean(axis=(1, 2, 3))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return {name: write_video(root / f"{name}{ext}", name) for name, (ext, _) in CODECS.items()}


@pytest.mark.parametrize("codec", list(CODECS))
def test_reads_the_requested_frames(videos, codec):
    with decoder.VideoReader(videos[codec]) as video:
        assert video.fps == 30.0
        assert video.num_frames == 40
        clip = video.read_indices(INDICES)
        assert video.decoded_frames <= 40
    with decoder.VideoReader(videos[codec]) as video:
        everything = video.read_all()
    assert everything.shape == (40, 48, 64, 3) and everything.dtype == np.uint8
    assert np.array_equal(clip, everything[INDICES])
    # and they are the right frames of the source, not just consistent with a full decode
    assert np.abs(grey_levels(clip) - np.array([level(i) for i in INDICES])).max() < 2.5


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_read_times_picks_the_frame_shown_at_each_time(videos, codec):
    with decoder.VideoReader(videos[codec]) as video:
        # frame k is shown from k/30 s; a time 0.4 frame later still shows it, 0.6 later the next
        clip = video.read_times(np.array([10 / 30, 10.4 / 30, 10.6 / 30, 0.0]))
    assert np.abs(grey_levels(clip) - np.array([level(10), level(10), level(11), level(0)])).max() < 2.5


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_a_time_just_past_the_end_shows_the_last_frame_and_far_past_it_is_an_error(videos, codec):
    # 40 frames at 30 fps: the last frame is shown from 39/30 s; the video lasts 40/30 s
    with decoder.VideoReader(videos[codec]) as video:
        clip = video.read_times(np.array([39 / 30, 40.5 / 30, 5 / 30]))
    assert np.abs(grey_levels(clip) - np.array([level(39), level(39), level(5)])).max() < 2.5
    with decoder.VideoReader(videos[codec]) as video:
        with pytest.raises(MediaError, match=r"the video ends at 1\.300 s but the clip needs 3\.333 s"):
            video.read_times(np.array([0.0, 100 / 30]))


def test_seeks_instead_of_decoding_from_the_start(tmp_path):
    path = write_video(tmp_path / "long.mp4", "h264", num_frames=150, gop=10)
    wanted = list(range(120, 136, 2))
    with decoder.VideoReader(path) as video:
        clip = video.read_indices(wanted)
        decoded = video.decoded_frames
    with decoder.VideoReader(path) as video:
        everything = video.read_all()
    assert np.array_equal(clip, everything[wanted])
    assert decoded < 40, f"decoded {decoded} frames for a clip in frames 120-134 of 150"


def test_read_clip_passes_length_and_fps_to_the_index_function(videos):
    seen = []

    def index_fn(n, fps):
        seen.append((n, fps))
        return np.array([3, 4, 30])

    frames, indices = decoder.read_clip(videos["vp8"], index_fn)
    assert seen == [(40, 30.0)] and indices.tolist() == [3, 4, 30]
    assert np.abs(grey_levels(frames) - np.array([level(3), level(4), level(30)])).max() < 2.5


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(MediaError, match="not found") as err:
        decoder.VideoReader(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(err.value)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match="cannot open") as err:
        decoder.VideoReader(garbage)
    assert str(garbage) in str(err.value)


def test_truncated_mp4(tmp_path):
    # moov atom at the end (the default): half a file cannot even be opened
    full = write_video(tmp_path / "full.mp4", "h264")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(MediaError, match="cannot open"):
        decoder.VideoReader(cut)
    # moov atom first (faststart): it opens, the header promises 40 frames, the data stops early
    fast = write_video(tmp_path / "fast.mp4", "h264", options={"movflags": "faststart"})
    cut = tmp_path / "cutfast.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size * 4 // 5])  # about frame 20 of 40
    with decoder.VideoReader(cut) as video:
        assert video.num_frames == 40
        video.read_indices([0, 1, 2])  # the start is intact
    with decoder.VideoReader(cut) as video, pytest.raises(MediaError, match=r"cutfast\.mp4: .*(truncated|corrupt)"):
        video.read_indices([30, 35, 39])


def test_truncated_webm_is_detected_from_its_stated_duration(tmp_path):
    full = write_video(tmp_path / "full.webm", "vp9")
    cut = tmp_path / "cut.webm"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 3 // 5])
    with decoder.VideoReader(cut) as video:
        assert video.num_frames == 40  # from the container's duration
        assert video.read_indices([0, 2]).shape == (2, 48, 64, 3)
    with decoder.VideoReader(cut) as video:
        with pytest.raises(MediaError, match=r"cut\.webm: the video ends at .*truncated"):
            video.read_indices([30, 39])


def test_unreferenced_frames_between_wanted_ones_are_skipped(tmp_path):
    path = write_video(tmp_path / "textured.mp4", "h264", num_frames=60, textured=True)
    with av.open(str(path)) as container:
        assert sum(f.pict_type == av.video.frame.PictureType.B for f in container.decode(video=0)) > 10
    wanted = list(range(10, 50, 5))
    clips = {}
    for skip in (True, False):
        with decoder.VideoReader(path) as video:
            video.skip_unneeded = skip
            clips[skip] = (video.read_indices(wanted), video.decoded_frames)
    with decoder.VideoReader(path) as video:
        everything = video.read_all()
    assert np.array_equal(clips[True][0], everything[wanted])
    assert np.array_equal(clips[False][0], everything[wanted])
    assert clips[True][1] < clips[False][1]
