"""Shared fixtures of the engine-loop tests: a tiny synthetic dataset on disk and tiny configs.

The dataset is the built-in synthetic one (``vov3d.data.synth``) in the original layouts (Kinetics
csv + mp4, SSv1/SSv2 label files + JPEG frames), 8 train / 4 val / 4 test videos of 48x32 pixels.
Configs train VoV3D-M on 4-frame 32-pixel clips with batch 2 on the CPU, one thread (2 cores are
shared by everything running on this machine; more threads only spin).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
NUM_TRAIN, NUM_VAL, NUM_TEST = 8, 4, 4
NUM_CLASSES = 12  # the synthetic dataset's classes

TINY_YAML = """\
# A tiny VoV3D-M run in the original's key layout (spec §7): CPU, 4 frames, 32 pixels.
TRAIN:
  ENABLE: True
  DATASET: kinetics
  BATCH_SIZE: 2
  EVAL_PERIOD: 1
  CHECKPOINT_PERIOD: 1
  AUTO_RESUME: True
  BACKEND: eager
DATA:
  NUM_FRAMES: 4
  SAMPLING_RATE: 2
  TRAIN_JITTER_SCALES: [32, 36]
  TRAIN_CROP_SIZE: 32
  TEST_CROP_SIZE: 32
  INPUT_CHANNEL_NUM: [3]
TEST:
  ENABLE: True
  DATASET: kinetics
  BATCH_SIZE: 4
  NUM_ENSEMBLE_VIEWS: 2
  NUM_SPATIAL_CROPS: 1
MODEL:
  NUM_CLASSES: 12
  ARCH: vov3d
  MODEL_NAME: VoV3D
  DROPOUT_RATE: 0.0
SOLVER:
  BASE_LR: 0.05
  LR_POLICY: cosine
  MAX_EPOCH: 2
  WARMUP_EPOCHS: 0.0
  WARMUP_START_LR: 0.01
  WEIGHT_DECAY: 5e-5
BN:
  USE_PRECISE_STATS: False
DATA_LOADER:
  NUM_WORKERS: 0
  PIN_MEMORY: False
NUM_GPUS: 0
RNG_SEED: 0
LOG_PERIOD: 2
LOG_MODEL_INFO: False
"""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread here and in child processes: with the cores shared, more threads spin.

    Module-scoped and undone after each module, so that tests outside tests/engine that run after
    these (in whatever order pytest is given) see the thread count they would see alone.
    """
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """The synthetic dataset in all formats: ``<root>/kinetics``, ``<root>/ssv1``, ``<root>/ssv2``."""
    from vov3d.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, formats="all", seed=0, num_train=NUM_TRAIN, num_val=NUM_VAL, num_test=NUM_TEST,
                     frame_size=(48, 32), num_frames=16, num_workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny_vov3d_M.yaml"
    path.write_text(TINY_YAML, encoding="utf-8")
    return path


def _tiny_opts(data_dir: Path, output_dir: Path, **overrides: Any) -> list[str]:
    """``KEY VALUE`` overrides for a tiny run; keyword names use ``__`` for dots (``TRAIN__ENABLE=False``)."""
    opts = ["DATA.PATH_TO_DATA_DIR", str(data_dir), "OUTPUT_DIR", str(output_dir)]
    for key, value in overrides.items():
        opts += [key.replace("__", "."), str(value)]
    return opts


class Tiny:
    """Builds tiny configs and command lines on the session's synthetic dataset."""

    python = sys.executable
    repo = REPO

    def __init__(self, yaml_path: Path, synth: Path) -> None:
        self.yaml = yaml_path
        self.synth = synth

    def data(self, fmt: str = "kinetics") -> Path:
        return self.synth / fmt

    def opts(self, output_dir: Path, fmt: str = "kinetics", **overrides: Any) -> list[str]:
        if fmt != "kinetics":
            overrides = {"TRAIN__DATASET": fmt, "TEST__DATASET": fmt, **overrides}
        return _tiny_opts(self.data(fmt), output_dir, **overrides)

    def cfg(self, output_dir: Path, fmt: str = "kinetics", **overrides: Any):
        from vov3d.config import load_config

        return load_config(self.yaml, self.opts(output_dir, fmt, **overrides))

    @staticmethod
    def env() -> dict[str, str]:
        return child_env()


@pytest.fixture(scope="session")
def tiny(tiny_yaml, synth_root) -> Tiny:
    return Tiny(tiny_yaml, synth_root)


def child_env() -> dict[str, str]:
    """Environment of a child python: this checkout's sources first, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env



@pytest.fixture(autouse=True, scope="session")
def kernel_cache_across_sessions(private_cache_dir):
    """vov3d's C kernels are built once per machine for these tests (in the temp folder, not ~/.cache):
    a build takes tens of seconds on the shared cores, and the library is keyed by its sources."""
    import tempfile

    before = os.environ.get("VOV3D_CACHE_DIR")
    os.environ["VOV3D_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "vov3d-engine-tests-cache")
    yield
    if before is not None:
        os.environ["VOV3D_CACHE_DIR"] = before
