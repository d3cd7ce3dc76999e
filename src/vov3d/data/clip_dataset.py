"""The machinery all clip datasets share (spec §8.1): views, random streams, transforms, bad data.

An item is ``(clip, label, index, meta)``:

* clip: float32 (3, T, H, W), normalised, channels in the order of §8.1 (see ``ClipDataset``);
* label: int class id; index: the dataset index asked for;
* meta: ``video_index``, ``temporal_index`` and ``spatial_index`` (−1 = random), ``path``,
  ``failures`` (samples that failed before this one was delivered) and ``error`` (their
  messages joined by " | ", each naming its file; "" if none). All values are scalars, so the
  default collate batches them.

Randomness: every draw comes from a numpy Generator seeded with (seed, epoch, index, attempt), so
an item depends neither on the worker that loads it nor on the number of workers, and changes
with :meth:`ClipDataset.set_epoch` (the original repeats its NumPy streams across workers and
epochs, §11.17). The global numpy/python/torch generators are never used.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vov3d.data import sampling, transforms
from vov3d.data.errors import DataError, MediaError
from vov3d.data.params import ClipParams, check_split

logger = logging.getLogger(__name__)

ON_ERROR = ("replace", "report", "raise")
MAX_ATTEMPTS = 10  # the original also gives up after 10 tries (§8.2)

# What counts as bad data. Programming errors (TypeError, IndexError, ...) are not caught.
_BAD_DATA = (DataError, OSError, ValueError, RuntimeError, EOFError)


@dataclass(frozen=True)
class Video:
    """One annotated video: a file, or a list of frame files (``frames``)."""

    path: str  # the video file, or the video's frame folder / id when it is read from frames
    label: int
    frames: tuple[str, ...] | None = None
    error: str = ""  # a problem known when the annotation was read (e.g. no frames listed)


Item = tuple[torch.Tensor, int, int, dict[str, Any]]


class ClipDataset(Dataset):
    """Base class: subclasses set ``videos`` and implement :meth:`load_frames`.

    on_error: "replace" (default for train: a bad sample is logged, counted and replaced by a
    random other video, at most 10 tries in a row), "report" (default for val/test: the item is a
    zero clip whose meta["error"] says what failed, so evaluation can list it) or "raise".

    Channel order (§8.1, §1.1): frames are decoded as RGB; a dataset whose original reader gave BGR
    (Something-Something, cv2) has ``native_channel_order = "bgr"``. MEAN/STD apply to the native
    order, then REVERSE_INPUT_CHANNEL reverses it, exactly as the original's sequence.
    """

    native_channel_order = "rgb"

    def __init__(
        self,
        videos: list[Video],
        split: str,
        params: ClipParams,
        *,
        seed: int = 0,
        on_error: str | None = None,
        num_temporal_views: int = 1,
    ) -> None:
        self.split = check_split(split)
        self.params = params
        self.videos = list(videos)
        self.seed = int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.epoch = 0
        if on_error is None:
            on_error = "replace" if split == "train" else "report"
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.failure_count = 0  # bad samples met in this process (workers keep their own)
        if split == "test":
            self.num_temporal_views = num_temporal_views
            self._views = [sampling.view_of_copy(k, params.num_spatial_crops) for k in range(params.num_test_views)]
        elif split == "val":
            self.num_temporal_views = 1
            self._views = [(self._temporal_view_for_eval(), sampling.RANDOM)]
        else:
            self.num_temporal_views = 1
            self._views = [(sampling.RANDOM, sampling.RANDOM)]
        native = [0, 1, 2] if self.native_channel_order == "rgb" else [2, 1, 0]
        order = [2, 1, 0] if params.reverse_input_channel else [0, 1, 2]
        self._channels = [native[c] for c in order]  # RGB channel of each output channel
        self._mean = [params.mean[c] for c in order]
        self._std = [params.std[c] for c in order]

    # ------------------------------------------------------------------------ subclass hooks
    def _temporal_view_for_eval(self) -> int:
        """Temporal view of the val split: 0 (of 1) = deterministic; RANDOM for Kinetics."""
        return 0

    def load_frames(self, video: Video, temporal_view: int, rng: np.random.Generator) -> np.ndarray:
        """The clip's frames as uint8 (T, H, W, 3) RGB; raise MediaError for bad data.

        The one method a new dataset implements. temporal_view: ``sampling.RANDOM`` (draw the
        clip's position from `rng`) or the index of a deterministic view among
        ``self.num_temporal_views``. Draw every random number from `rng` (spec §8.1).
        """
        raise NotImplementedError

    # ------------------------------------------------------------------------ views
    @property
    def views_per_video(self) -> int:
        """Items per video: NUM_ENSEMBLE_VIEWS × NUM_SPATIAL_CROPS for test, else 1."""
        return len(self._views)

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def labels(self) -> list[int]:
        """Label of every video (not every item)."""
        return [v.label for v in self.videos]

    def __len__(self) -> int:
        return len(self.videos) * len(self._views)

    def view(self, index: int) -> tuple[int, int, int]:
        """(video index, temporal view, spatial view) of dataset item `index`."""
        video_index, copy = divmod(index, len(self._views))
        temporal, spatial = self._views[copy]
        return video_index, temporal, spatial

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random streams (the loader calls this; see loader.py)."""
        self.epoch = int(epoch)

    def rng(self, epoch: int, index: int, attempt: int = 0) -> np.random.Generator:
        """The random stream of one sample."""
        return np.random.default_rng([self.seed, epoch, index, attempt])

    # ------------------------------------------------------------------------ items
    def __getitem__(self, key: int | tuple[int, int]) -> Item:
        """Item `key`, or `(epoch, index)` as the loader's sampler yields it."""
        if isinstance(key, tuple):
            epoch, index = operator.index(key[0]), operator.index(key[1])
        else:
            epoch, index = self.epoch, operator.index(key)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        return self.get(index, epoch)

    def get(self, index: int, epoch: int = 0) -> Item:
        """Item `index` with the random streams of `epoch`, applying the on_error policy."""
        video_index, temporal, spatial = self.view(index)
        errors: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            rng = self.rng(epoch, index, attempt)
            if attempt > 0:  # replace the failed sample by a random other video
                video_index = self._replacement(video_index, rng)
            video = self.videos[video_index]
            try:
                clip = self.make_clip(video, temporal, spatial, rng)
            except _BAD_DATA as err:
                message = str(err) if isinstance(err, MediaError) else f"{video.path}: {type(err).__name__}: {err}"
                self.failure_count += 1
                errors.append(message)
                if self.on_error == "raise":
                    raise
                if self.on_error == "report" or len(self.videos) < 2:
                    logger.warning("bad sample %d (%s) in the %s split: %s", index, video.path, self.split, message)
                    shape = (3, self.params.num_frames) + (self._crop_size(spatial),) * 2
                    meta = self._meta(video_index, temporal, spatial, video, len(errors), message)
                    return torch.zeros(shape), video.label, index, meta
                logger.warning(
                    "bad sample %d (%s) in the %s split, replaced by another video: %s",
                    index, video.path, self.split, message,
                )
                continue
            meta = self._meta(video_index, temporal, spatial, video, len(errors), " | ".join(errors))
            return clip, video.label, index, meta
        raise DataError(
            f"{MAX_ATTEMPTS} samples in a row failed in the {self.split} split (index {index}); "
            "the data or the pipeline is broken. Errors:\n  " + "\n  ".join(errors)
        )

    def _replacement(self, failed: int, rng: np.random.Generator) -> int:
        choice = int(rng.integers(len(self.videos) - 1))
        return choice + 1 if choice >= failed else choice  # any video but the failed one

    @staticmethod
    def _meta(video_index: int, temporal: int, spatial: int, video: Video, failures: int, error: str) -> dict[str, Any]:
        return {
            "video_index": video_index,
            "temporal_index": temporal,
            "spatial_index": spatial,
            "path": video.path,
            "failures": failures,
            "error": error,
        }

    def _crop_size(self, spatial: int) -> int:
        return self.params.train_crop_size if spatial == sampling.RANDOM else self.params.test_crop_size

    def make_clip(self, video: Video, temporal: int, spatial: int, rng: np.random.Generator) -> torch.Tensor:
        """Load and transform one clip (§8.1 steps 1-5)."""
        if video.error:
            raise MediaError(video.path, video.error)
        frames = self.load_frames(video, temporal, rng)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] != self.params.num_frames:
            raise MediaError(video.path, f"expected ({self.params.num_frames}, H, W, 3) frames, got {frames.shape}")
        return self.transform(frames, spatial, rng)

    def transform(self, frames: np.ndarray, spatial: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """uint8 (T, H, W, 3) RGB frames -> normalised float (3, T, S, S) (§8.1, §8.4).

        Scaling and cropping run on [0, 1] values and normalisation last: bilinear weights sum to
        one, so this equals the original's normalise-then-resize up to float rounding (~1e-6),
        and normalises far fewer pixels.
        """
        p = self.params
        clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)
        if self._channels != [0, 1, 2]:
            clip = clip[self._channels]
        clip = clip.contiguous().float().div_(255.0)
        if spatial == sampling.RANDOM:
            lo, hi = p.train_jitter_scales
            clip = transforms.spatial_sample(
                clip, spatial, min_scale=lo, max_scale=hi, crop_size=p.train_crop_size,
                random_flip=p.random_flip, inverse_uniform=p.inverse_uniform_sample, rng=rng,
            )
        else:
            s = p.test_crop_size
            clip = transforms.spatial_sample(
                clip, spatial, min_scale=s, max_scale=s, crop_size=s,
                random_flip=False, inverse_uniform=False,
            )
        return transforms.normalize(clip, self._mean, self._std).contiguous()
