"""A job of the distributed tests: join (original flags, or torchrun's environment), all-reduce, gather.

python join_and_reduce.py --out DIR [--num_processes N] [--num_shards M --shard_id K --init_method URL]
                          [--kill_rank R [--kill_once] | --hang_rank R | --keep_going] [--heartbeat_timeout S]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/distributed: dist_workers

from vov3d.engine import distributed as D  # noqa: E402

import dist_workers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--num_processes", type=int, default=1)
    parser.add_argument("--num_shards", type=int, default=1)
    parser.add_argument("--shard_id", type=int, default=0)
    parser.add_argument("--init_method", default=None)
    parser.add_argument("--kill_rank", type=int, default=-1)
    parser.add_argument("--hang_rank", type=int, default=-1)
    parser.add_argument("--keep_going", action="store_true", help="all-reduce for a minute (to be killed)")
    parser.add_argument("--heartbeat_timeout", type=float, default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--kill_once", action="store_true", help="kill in the first run only (then restart)")
    args = parser.parse_args()
    try:
        D.launch(dist_workers.reduce_job, (args.out, args.kill_rank, 60.0, args.hang_rank, args.keep_going,
                                              args.kill_once), num_processes=args.num_processes,
                 num_shards=args.num_shards, shard_id=args.shard_id, init_method=args.init_method,
                 backend="gloo", timeout_s=args.timeout, use_cuda=False, heartbeat_timeout_s=args.heartbeat_timeout)
    except D.WorkerFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
