"""Spatial transforms against spec §8.4."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vov3d.data import transforms


def grid(h: int, w: int, t: int = 2) -> torch.Tensor:
    """(3, t, h, w) clip whose values give their own (row, column)."""
    rows = torch.arange(h).view(h, 1).expand(h, w)
    cols = torch.arange(w).view(1, w).expand(h, w)
    return (rows * 1000 + cols).float().expand(3, t, h, w).contiguous()


def test_scaled_size_floors_the_long_side():
    assert transforms.scaled_size(240, 320, 256) == (256, 341)  # floor(320/240·256) = 341
    assert transforms.scaled_size(320, 240, 256) == (341, 256)
    assert transforms.scaled_size(100, 100, 64) == (64, 64)


def test_scale_short_side_is_bilinear_without_align_corners():
    clip = torch.rand(3, 2, 12, 20)
    out = transforms.scale_short_side(clip, 9)
    assert out.shape == (3, 2, 9, 15)
    assert torch.equal(out, F.interpolate(clip, size=(9, 15), mode="bilinear", align_corners=False))
    assert transforms.scale_short_side(clip, 12) is clip  # already that size: unchanged


def test_random_crop_reaches_every_offset_including_the_last():
    clip = grid(10, 12)
    ys, xs = set(), set()
    for seed in range(300):
        out = transforms.random_crop(clip, 8, np.random.default_rng(seed))
        assert out.shape[-2:] == (8, 8)
        y, x = divmod(int(out[0, 0, 0, 0]), 1000)
        ys.add(y), xs.add(x)
    assert ys == {0, 1, 2} and xs == {0, 1, 2, 3, 4}


def test_random_crop_of_exact_size_returns_the_clip():
    clip = grid(8, 8)
    out = transforms.random_crop(clip, 8, np.random.default_rng(0))
    assert isinstance(out, torch.Tensor) and torch.equal(out, clip)
    with pytest.raises(ValueError, match="cannot crop"):
        transforms.random_crop(clip, 9, np.random.default_rng(0))


@pytest.mark.parametrize(
    "h,w,expected",
    [
        (8, 20, [(0, 0), (0, 6), (0, 12)]),  # landscape: left, centre ceil(12/2), right
        (8, 19, [(0, 0), (0, 6), (0, 11)]),  # centre ceil(11/2) = 6
        (20, 8, [(0, 0), (6, 0), (12, 0)]),  # portrait: top, centre, bottom
        (8, 8, [(0, 0), (0, 0), (0, 0)]),
    ],
)
def test_three_test_crops(h, w, expected):
    clip = grid(h, w)
    crops = [transforms.uniform_crop(clip, 8, i) for i in range(3)]
    for i, (crop, (y, x)) in enumerate(zip(crops, expected)):
        assert crop.shape == (3, 2, 8, 8)
        assert divmod(int(crop[0, 0, 0, 0]), 1000) == (y, x)
        assert transforms.crop_offsets(h, w, 8, i) == (y, x)
    if w > h:  # the three crops cover the whole width
        covered = set()
        for crop in crops:
            covered |= {int(v) % 1000 for v in crop[0, 0, 0]}
        assert covered == set(range(w))


def test_test_spatial_sample_scales_short_side_then_crops():
    clip = torch.rand(3, 2, 48, 64)
    out = transforms.spatial_sample(
        clip, 1, min_scale=32, max_scale=32, crop_size=32, random_flip=True, inverse_uniform=False
    )
    scaled = F.interpolate(clip, size=(32, 42), mode="bilinear", align_corners=False)
    assert torch.equal(out, scaled[..., :, 5:37])  # ceil((42-32)/2) = 5


def test_jitter_sizes():
    sizes = [transforms.jitter_size(256, 320, False, np.random.default_rng(s)) for s in range(2000)]
    inverse = [transforms.jitter_size(256, 320, True, np.random.default_rng(s)) for s in range(2000)]
    assert min(sizes) >= 256 and max(sizes) <= 320 and min(inverse) >= 256 and max(inverse) <= 320
    expected = int(round(np.random.default_rng(3).uniform(256, 320)))
    assert transforms.jitter_size(256, 320, False, np.random.default_rng(3)) == expected
    assert transforms.jitter_size(256, 320, True, np.random.default_rng(3)) == int(
        round(1 / np.random.default_rng(3).uniform(1 / 320, 1 / 256))
    )
    # inverse-uniform favours small sizes: its mean is the harmonic-type mean ~286.2 < 288
    assert np.mean(inverse) < np.mean(sizes) - 1


def test_flip_only_when_enabled():
    clip = grid(8, 8)
    flipped = {
        bool(torch.equal(
            transforms.spatial_sample(clip, -1, min_scale=8, max_scale=8, crop_size=8, random_flip=True,
                                      inverse_uniform=False, rng=np.random.default_rng(s)),
            clip.flip(-1),
        ))
        for s in range(20)
    }
    assert flipped == {True, False}
    for s in range(20):
        out = transforms.spatial_sample(clip, -1, min_scale=8, max_scale=8, crop_size=8, random_flip=False,
                                        inverse_uniform=False, rng=np.random.default_rng(s))
        assert torch.equal(out, clip)


def test_normalize():
    clip = torch.full((3, 1, 2, 2), 0.5)
    out = transforms.normalize(clip, (0.5, 0.4, 0.3), (0.1, 0.2, 0.4))
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor([0.0, 0.5, 0.5]))


def test_clip_transform_equals_the_original_order_normalise_then_resize():
    from vov3d.data import ClipParams
    from vov3d.data.clip_dataset import ClipDataset, Video

    params = ClipParams(num_frames=4, train_jitter_scales=(40, 56), train_crop_size=32, test_crop_size=40,
                        mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), reverse_input_channel=True)
    dataset = ClipDataset([Video("v", 0)], "train", params)
    frames = np.random.default_rng(0).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    for seed in range(5):
        ours = dataset.transform(frames, -1, np.random.default_rng(seed))
        # the original (spec §8.1): /255, normalise, (C, T, H, W), spatial sampling, reverse channels
        x = (torch.from_numpy(frames).float() / 255 - torch.tensor(params.mean)) / torch.tensor(params.std)
        x = transforms.spatial_sample(x.permute(3, 0, 1, 2), -1, min_scale=40, max_scale=56, crop_size=32,
                                      random_flip=True, inverse_uniform=False, rng=np.random.default_rng(seed))
        expected = x[[2, 1, 0]]
        assert ours.shape == expected.shape == (3, 4, 32, 32)
        assert torch.allclose(ours, expected, atol=1e-5)


def test_horizontal_flip_has_probability_one_half():
    from vov3d.data import ClipParams
    from vov3d.data.clip_dataset import ClipDataset, Video

    params = ClipParams(num_frames=1, train_jitter_scales=(8, 8), train_crop_size=8, test_crop_size=8)
    dataset = ClipDataset([Video("v", 0)], "train", params)
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    frames[:, :, 4:] = 255  # dark left half, bright right half
    n = 2000
    flips = 0
    for item in range(n):
        clip = dataset.transform(frames, -1, dataset.rng(0, item))
        left, right = clip[..., :4].mean(), clip[..., 4:].mean()
        assert abs(left - right) > 3  # exactly one of: as is, mirrored
        flips += bool(left > right)
    # Binomial(2000, 0.5): sd 22.4; +-100 is 4.5 sd (fixed seeds: the count itself never changes)
    assert abs(flips - n / 2) <= 100, f"{flips} flips in {n} clips"
    unflipped = ClipDataset([Video("v", 0)], "train", params.replace(random_flip=False))
    assert all(unflipped.transform(frames, -1, unflipped.rng(0, i))[..., 4:].mean() > 1 for i in range(50))


def test_random_crop_needs_both_sides_at_least_the_crop():
    rng = np.random.default_rng(0)
    for shape in [(3, 2, 40, 60), (3, 2, 60, 40)]:
        with pytest.raises(ValueError, match=r"cannot crop 48x48 from a \d+x\d+ clip"):
            transforms.random_crop(torch.zeros(shape), 48, rng)
    assert transforms.random_crop(torch.zeros(3, 2, 48, 48), 48, rng).shape == (3, 2, 48, 48)


def test_a_square_frame_is_cropped_as_a_landscape_one_and_bad_crops_are_refused():
    assert [transforms.crop_offsets(10, 10, 8, i) for i in range(3)] == [(1, 0), (1, 1), (1, 2)]
    for height, width in ((100, 50), (50, 100), (50, 50)):  # one side too short is enough
        with pytest.raises(ValueError, match=f"^cannot crop 64x64 from a {height}x{width} clip$"):
            transforms.crop_offsets(height, width, 64, 1)
    with pytest.raises(ValueError, match="^spatial index must be 0, 1 or 2, got 3$"):
        transforms.crop_offsets(100, 100, 64, 3)
