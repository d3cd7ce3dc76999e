"""PyAV decoding of real small files: every container/codec, frame choice by time, seeking."""

from __future__ import annotations

import av
import numpy as np
import pytest

from media_files import CODECS, encode_h264, frame_stack, level, write_video
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
def test_reads_the_requestedframe_stack(videos, codec):
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
    # The seek goes to the earliest wanted frame, whatever the order asked: here the frames on both
    # sides of a key frame k (a seek for k + 1 would land on k, after k - 1, and decode from the start).
    with av.open(str(path)) as container:
        k = next(i for i, f in enumerate(container.decode(video=0)) if f.key_frame and i >= 120)
    with decoder.VideoReader(path) as video:
        clip = video.read_indices([k + 1, k - 1])
        decoded = video.decoded_frames
    assert np.array_equal(clip, everything[[k + 1, k - 1]])
    assert decoded < 40, f"decoded {decoded} frames for frames {k - 1} and {k + 1} of 150"


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
    assert err.value.path == str(garbage) and str(err.value).startswith(f"{garbage}: cannot open video: ")
    sound = tmp_path / "sound.mp4"  # a file with an audio track only
    with av.open(str(sound), "w") as container:
        track = container.add_stream("aac", rate=8000)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 8000, 0
        for packet in [*track.encode(chunk), *track.encode()]:
            container.mux(packet)
    with pytest.raises(MediaError) as err:
        decoder.VideoReader(sound)
    assert str(err.value) == f"{sound}: no video stream in the file"


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
    for skip in (None, False):  # None: the default, which skips
        with decoder.VideoReader(path) as video:
            if skip is not None:
                video.skip_unneeded = skip
            clips[skip] = (video.read_indices(wanted), video.decoded_frames)
    with decoder.VideoReader(path) as video:
        everything = video.read_all()
    assert np.array_equal(clips[None][0], everything[wanted])
    assert np.array_equal(clips[False][0], everything[wanted])
    assert clips[None][1] < clips[False][1]


@pytest.mark.parametrize("headers", ["once", "at_every_key_frame"])
def test_an_mpeg_ts_file_is_read_right_although_its_seeks_land_off_target(tmp_path, headers):
    # MPEG-TS has no index: a seek lands near, not on, the key frame before the wanted time. With the
    # codec headers written once, nothing after the seek can be decoded; with them at every key frame,
    # decoding starts at a key frame after the first wanted frame. Either way the reader decodes from
    # the start instead.
    params = "repeat-headers=1" if headers == "at_every_key_frame" else None
    path = encode_h264(tmp_path / "v.ts", frame_stack(150), container_format="mpegts", x264_params=params)
    wanted = [120, 130, 121]
    with decoder.VideoReader(path) as video:
        assert video.num_frames == 150
        clip = video.read_indices(wanted)
    with decoder.VideoReader(path) as video:
        everything = video.read_all()
    assert len(everything) == 150
    assert np.array_equal(clip, everything[wanted])
    assert np.abs(grey_levels(clip) - np.array([level(i) % 256 for i in wanted])).max() < 2.5
    # the stream starts at a non-zero timestamp: times count from it (the last frame is shown from 149/30 s)
    with decoder.VideoReader(path) as video, pytest.raises(MediaError, match=r"the video ends at 4\.967 s"):
        video.read_times([5.6])


def test_the_audio_track_of_a_video_is_not_decoded_asframe_stack(tmp_path):
    path = encode_h264(tmp_path / "talk.mp4", frame_stack(40), audio=True)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
    with decoder.VideoReader(path) as video:
        everything = video.read_all()
    assert everything.shape == (40, 48, 64, 3)
    with decoder.VideoReader(path) as video:
        clip = video.read_indices(INDICES)
        assert video.decoded_frames <= 40
    assert np.array_equal(clip, everything[INDICES])


def test_a_stream_without_frame_count_or_duration_is_decoded_whole_to_count_itsframe_stack(tmp_path):
    # A raw H.264 stream states neither; FFmpeg assumes 25 fps for it.
    path = encode_h264(tmp_path / "raw.h264", frame_stack(40), container_format="h264")
    seen = []

    def index_fn(n, fps):
        seen.append((n, fps))
        return np.array([39, 0, 7])

    with decoder.VideoReader(path) as video:
        assert video.num_frames is None and video.duration is None
    frames, indices = decoder.read_clip(path, index_fn)
    assert seen == [(40, 25.0)] and indices.tolist() == [39, 0, 7]
    assert frames.shape == (3, 48, 64, 3) and frames.dtype == np.uint8
    assert np.abs(grey_levels(frames) - np.array([level(39), level(0), level(7)])).max() < 2.5


def test_read_times_returns_uint8_and_rejects_an_empty_or_nested_request(videos):
    with decoder.VideoReader(videos["h264"]) as video:
        assert video.read_times([0.5, 0.1]).dtype == np.uint8
        for bad in ([], [[0.1, 0.2]]):
            with pytest.raises(ValueError, match="times must be a non-empty 1-d sequence"):
                video.read_times(bad)


def test_a_clip_may_reach_two_frames_and_a_tenth_of_the_duration_past_the_end_at_most(tmp_path):
    # 12 s at 5 fps: the last frame is shown from 11.8 s; the slack is 2 frames + min(1 s, 10 % of 12 s)
    path = encode_h264(tmp_path / "long.mp4", frame_stack(60), fps=5)
    with decoder.VideoReader(path) as video:
        assert video.duration == pytest.approx(12.0)
        last = video.read_times([11.8 + 0.4 + 1.0 - 0.02, 1.0])
    assert np.abs(grey_levels(last) - np.array([level(59) % 256, level(5)])).max() < 2.5
    with decoder.VideoReader(path) as video:
        with pytest.raises(MediaError, match=r"long\.mp4: the video ends at 11\.800 s but the clip needs 13\.220 s"):
            video.read_times([1.0, 11.8 + 0.4 + 1.0 + 0.02])


def test_a_header_without_frame_data_is_an_error_naming_the_file(tmp_path):
    # faststart: the header (40 frames) comes first; cut right after the start of the data atom
    fast = write_video(tmp_path / "fast.mp4", "h264", options={"movflags": "faststart"})
    data = fast.read_bytes()
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(data[: data.index(b"mdat") + 4])
    with decoder.VideoReader(empty) as video:
        assert video.num_frames == 40
        with pytest.raises(MediaError, match=r"^.*empty\.mp4: no frame could be decoded$") as err:
            video.read_all()
    assert err.value.path == str(empty) and err.value.reason == "no frame could be decoded"
    with decoder.VideoReader(empty) as video, pytest.raises(MediaError, match=r"empty\.mp4: no frame could be decoded"):
        video.read_indices([0, 1])


def test_a_file_whose_metadata_is_not_utf8_is_read(tmp_path):
    # Tags in another encoding (common in old files) must not stop the video from being read.
    path = encode_h264(tmp_path / "tagged.mp4", frame_stack(10), metadata={"title": "caf\u00e9"})
    data = path.read_bytes()
    assert data.count("caf\u00e9".encode()) == 1
    path.write_bytes(data.replace("caf\u00e9".encode(), b"caf\xe9\xe9"))  # Latin-1, not UTF-8
    with pytest.raises(UnicodeDecodeError):
        av.open(str(path))  # PyAV's default
    with decoder.VideoReader(path) as video:
        frames = video.read_indices([0, 9])
    assert np.abs(grey_levels(frames) - np.array([level(0), level(9)])).max() < 2.5


def test_a_one_frame_a_second_video_is_read(tmp_path):
    path = encode_h264(tmp_path / "timelapse.mp4", frame_stack(6), fps=1, gop=2)
    with decoder.VideoReader(path) as video:
        assert video.fps == 1.0 and video.num_frames == 6
        frames = video.read_indices([5, 0, 3])
    assert np.abs(grey_levels(frames) - np.array([level(5), level(0), level(3)])).max() < 2.5
