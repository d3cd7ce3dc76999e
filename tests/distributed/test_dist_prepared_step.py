"""The trainer's fast CPU step (vov3d.accel.prepare_for_training) composes with DDP (issue 18)."""

from __future__ import annotations

from pathlib import Path

import torch

import dist_workers
from vov3d.engine import distributed as D
from vov3d.models import create_model


def test_ddp_over_the_prepared_step_trains_the_pure_model_with_averaged_gradients(tmp_path: Path):
    D.launch(dist_workers.prepared_ddp_job, (str(tmp_path),), num_processes=2,
             init_method=f"file://{tmp_path}/rdzv", backend="gloo", timeout_s=60, use_cuda=False,
             heartbeat_timeout_s=30)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["prepared"] != "VoV3D"  # the prepared network, not the model itself
    keys = sorted(create_model("vov3d_m", num_classes=5, dropout=0.0, num_frames=4, train_crop_size=32).state_dict())
    for result in ranks:
        assert result["unwrapped_keys"] == keys  # checkpoints from it load into the pure model
    for name, value in ranks[0]["initial"].items():  # DDP copied rank 0's weights into rank 1's pure model
        assert torch.equal(value, ranks[1]["initial"][name]), name
    grads0, grads1 = ranks[0]["grads"], ranks[1]["grads"]
    assert all(g is not None for g in grads0.values())  # every parameter of the pure model got a gradient
    for name in grads0:  # averaged over the ranks' different clips: the same everywhere
        torch.testing.assert_close(grads0[name], grads1[name], rtol=0, atol=0, msg=name)
    assert any(g.abs().sum() > 0 for g in grads0.values())
