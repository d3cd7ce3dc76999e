"""JPEG frame reading: real files written here, corrupt and missing ones included."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from media_files import frame_image, write_jpeg
from vov3d.data import frames
from vov3d.data.errors import MediaError


def test_reads_jpeg_as_rgb(tmp_path):
    image = frame_image(3, colour=(255, 0, 0))
    path = write_jpeg(tmp_path / "a.jpg", image)
    got = frames.read_image(path)
    assert got.shape == (48, 64, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - image).mean() < 2
    assert got[5, 5, 0] > 240 and got[5, 5, 2] < 15  # red stays in channel 0


def test_reads_png_through_pillow(tmp_path):
    image = frame_image(1, colour=(0, 0, 255))
    Image.fromarray(image).save(tmp_path / "a.png")
    assert np.array_equal(frames.read_image(tmp_path / "a.png"), image)
    grey = image[..., 0]  # a one-channel PNG comes out as three equal channels
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.array_equal(frames.read_image(tmp_path / "grey.png"), np.stack([grey] * 3, axis=-1))
    Image.fromarray(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])).save(tmp_path / "rgba.png")
    assert np.array_equal(frames.read_image(tmp_path / "rgba.png"), image)


def test_read_frames_stacks_and_repeats(tmp_path):
    paths = [write_jpeg(tmp_path / f"{i}.jpg", frame_image(i)) for i in range(3)]
    assert frames.read_frames([paths[1]]).shape == (1, 48, 64, 3)
    with pytest.raises(ValueError, match="no frame paths given"):
        frames.read_frames([])
    order = [paths[0], paths[2], paths[2], paths[1], paths[0], paths[1]]  # short videos repeat frames
    got = frames.read_frames(order)
    assert got.shape == (6, 48, 64, 3) and got.dtype == np.uint8
    for frame, path in zip(got, order):
        assert np.array_equal(frame, frames.read_image(path))
    assert len({frame.tobytes() for frame in got}) == 3


def test_missing_corrupt_truncated_and_empty_frames(tmp_path):
    good = write_jpeg(tmp_path / "good.jpg", frame_image(0))
    data = good.read_bytes()
    with pytest.raises(MediaError, match=r"missing\.jpg: frame file not found"):
        frames.read_image(tmp_path / "missing.jpg")
    corrupt = tmp_path / "corrupt.jpg"  # a JPEG header followed by garbage
    corrupt.write_bytes(data[:20] + np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"corrupt\.jpg: corrupt JPEG"):
        frames.read_image(corrupt)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"truncated\.jpg: corrupt JPEG"):
        frames.read_image(truncated)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty\.jpg: empty image file") as err:
        frames.read_image(empty)
    assert err.value.path == str(empty)
    text = tmp_path / "text.jpg"
    text.write_bytes(b"not an image at all")
    with pytest.raises(MediaError, match=r"text\.jpg: not a readable image") as err:
        frames.read_image(text)
    assert err.value.path == str(text)
    with pytest.raises(MediaError, match=r"cannot read frame") as err:
        frames.read_image(tmp_path)  # a folder
    assert err.value.path == str(tmp_path)


@pytest.mark.parametrize("cut", ["half_of_the_scan", "end_marker"])
def test_a_jpeg_cut_inside_its_scan_data_is_an_error_not_a_grey_image(tmp_path, cut):
    # The header (tables, frame and scan headers) is whole; only the compressed data stops early.
    # A lenient decoder fills the rest with grey and reports success.
    data = write_jpeg(tmp_path / "whole.jpg", frame_image(5, textured=True)).read_bytes()
    scan = data.index(b"\xff\xda")  # start of scan
    assert len(data) - scan > 1000  # the noise texture makes a long scan
    end = scan + (len(data) - scan) // 2 if cut == "half_of_the_scan" else len(data) - 2
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:end])
    with pytest.raises(MediaError, match=r"cut\.jpg: corrupt JPEG"):
        frames.read_image(path)
    with pytest.raises(MediaError, match=r"cut\.jpg"):
        frames.read_frames([tmp_path / "whole.jpg", path])


def test_frames_of_different_sizes_are_an_error(tmp_path):
    a = write_jpeg(tmp_path / "a.jpg", frame_image(0))
    b = write_jpeg(tmp_path / "b.jpg", frame_image(0, width=32))
    with pytest.raises(MediaError, match=r"b\.jpg: frame size"):
        frames.read_frames([a, b])
