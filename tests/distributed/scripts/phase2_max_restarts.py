"""(The pytest version of this check is tests/distributed/test_dist_run_net.py.)

Issue 18: "a killed worker under --max-restarts 1 ends in a finished run with nothing lost but the
iterations since the last checkpoint". Trains the tiny VoV3D-M of phase2_compare_runs.py under

    torchrun --standalone --nproc-per-node 2 --max-restarts 1 tools/run_net.py ... TRAIN.CHECKPOINT_ITER_PERIOD 1

SIGKILLs one worker (a child of torchrun) once the first mid-epoch checkpoint exists, and checks that
torchrun ends with status 0, that the restarted job resumed from a checkpoint ("resuming from" in
log.txt), and that the last epoch's checkpoint exists (the run finished its SOLVER.MAX_EPOCH epochs).

    python tests/distributed/scripts/phase2_max_restarts.py --work /tmp/p2r
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from phase2_compare_runs import REPO, YAML, finish, start


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(t) for t in text]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "tiny.yaml").write_text(YAML, encoding="utf-8")
    sys.path.insert(0, str(REPO / "src"))
    from vov3d.engine import checkpointer

    if not (args.work / "data").exists():
        from vov3d.data.synth import generate_dataset

        generate_dataset(args.work / "data", formats="kinetics", seed=0, num_train=8, num_val=4, num_test=4,
                         frame_size=(48, 32), num_frames=16, num_workers=1)
    out = args.work / "restarts"
    argv = [Path(sys.executable).with_name("torchrun"), "--standalone", "--nproc-per-node", "2", "--max-restarts", "1",
            "--monitor-interval", "0.2", "tools/run_net.py", "--cfg", args.work / "tiny.yaml",
            "DATA.PATH_TO_DATA_DIR", args.work / "data" / "kinetics", "OUTPUT_DIR", out,
            "TRAIN.CHECKPOINT_ITER_PERIOD", "1", "DIST_TIMEOUT", "60"]
    # torch 2.13: a restarted job cannot connect through the agent's shared store (docs/distributed.md)
    os.environ["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    proc, end = start(argv), time.monotonic() + args.timeout
    killed = None
    while killed is None:
        if proc.poll() is not None or time.monotonic() > end:
            finish(proc, 1)
            raise SystemExit("no mid-epoch checkpoint appeared before the run ended")
        if any("_iter_" in p.name for p in checkpointer.list_checkpoints(out)):
            workers = children(proc.pid)
            if len(workers) == 2:
                killed = workers[1]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    status = finish(proc, max(1.0, end - time.monotonic()))
    log = (out / "log.txt").read_text(encoding="utf-8") if (out / "log.txt").exists() else ""
    max_epoch = 2  # SOLVER.MAX_EPOCH of the YAML
    result = {"status": status, "killed_pid": killed, "resumed": "resuming from" in log,
              "last_epoch_checkpoint": checkpointer.epoch_checkpoint_path(out, max_epoch - 1).exists()}
    print(json.dumps(result))
    return 0 if status == 0 and result["resumed"] and result["last_epoch_checkpoint"] else 1


if __name__ == "__main__":
    sys.exit(main())
