"""A heartbeat watchdog that ends a process whose job lost a rank (issue 18 "Faults").

A killed process cannot say it is gone, and gloo only says "connection reset by peer" (no rank),
or nothing at all until the collective timeout when the survivor is not talking to the dead peer.
So every rank's watchdog thread bumps a counter in the job's own rendezvous store (torch's
TCPStore/FileStore, through its thread-safe ``clone()``) every ``interval`` seconds and watches the
next rank's counter (a ring: O(1) store traffic per rank). When that counter stands still for
``lost_after_s``, it posts the lost rank in the store, prints one line naming it, and ends the
process with :data:`LOST_RANK_EXIT_STATUS`; every other watchdog sees the post within an
interval and does the same. A rank that finished normally marks itself done and is not watched.
If the store itself stops answering (its host, rank 0 under tcp://, is gone) that is named instead.
A rank that hangs but lives keeps beating: the collective timeout (DIST_TIMEOUT) bounds that case.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from typing import Callable

import torch.distributed as dist

LOST_RANK_EXIT_STATUS = 3
_PREFIX = "vov3d/watchdog/"
_watchdog: "HeartbeatWatchdog | None" = None


def default_on_lost(message: str) -> None:
    """Print ``message`` on stderr and end the process at once (a blocked collective cannot be left)."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(LOST_RANK_EXIT_STATUS)


class HeartbeatWatchdog:
    """Beats for ``rank`` and watches rank ``(rank + 1) % world_size`` in ``store`` (see the module doc)."""

    def __init__(
        self,
        store: dist.Store,
        rank: int,
        world_size: int,
        lost_after_s: float,
        run_id: str = "",
        interval_s: float | None = None,
        on_lost: Callable[[str], None] = default_on_lost,
    ) -> None:
        if lost_after_s <= 0:
            raise ValueError(f"lost_after_s must be > 0, got {lost_after_s}")
        self.store = dist.PrefixStore(_PREFIX + run_id + "/", store)
        self.rank, self.world_size = rank, world_size
        self.watched = (rank + 1) % world_size
        self.lost_after_s = lost_after_s
        self.interval_s = min(1.0, lost_after_s / 5) if interval_s is None else interval_s
        self.on_lost = on_lost
        self.lost_message: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vov3d-watchdog-{rank}", daemon=True)

    def start(self) -> "HeartbeatWatchdog":
        self.store.add(f"beat/{self.rank}", 1)
        self._thread.start()
        return self

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread to end (it ends the process when it names a lost rank)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Mark this rank done (not to be watched any more) and stop the thread."""
        self._stop.set()
        self._thread.join()
        try:
            self.store.add(f"done/{self.rank}", 1)
        except Exception:  # the store may be gone at exit; nobody is left to watch us then
            pass

    def _report(self, message: str) -> None:
        self.lost_message = message
        self.on_lost(message)

    def _run(self) -> None:
        watched_done = self.watched == self.rank
        last_value, last_change = -1, time.monotonic()
        while not self._stop.wait(self.interval_s):
            try:
                self.store.add(f"beat/{self.rank}", 1)
                if self.store.add("lost_count", 0) > 0:
                    lost = self.store.get("lost").decode()
                    self._report(f"vov3d: rank {self.rank}: rank {lost} of the job was lost (reported by "
                                 f"another rank's watchdog); ending this process (exit status {LOST_RANK_EXIT_STATUS})")
                    return
                if watched_done or self.store.add(f"done/{self.watched}", 0) > 0:
                    watched_done = True
                    continue
                value = self.store.add(f"beat/{self.watched}", 0)
            except Exception as err:  # the store's host is gone
                if self._stop.is_set():
                    return
                self._report(f"vov3d: rank {self.rank}: the job's rendezvous store stopped answering (its host, "
                             f"rank 0 or the launcher of machine 0, was lost): {str(err).splitlines()[0]}; "
                             f"ending this process (exit status {LOST_RANK_EXIT_STATUS})")
                return
            now = time.monotonic()
            if value != last_value:
                last_value, last_change = value, now
            elif now - last_change > self.lost_after_s:
                try:
                    self.store.set("lost", str(self.watched))
                    self.store.add("lost_count", 1)
                except Exception:
                    pass
                self._report(f"vov3d: rank {self.rank}: lost rank {self.watched}: no heartbeat for "
                             f"{now - last_change:.0f} s (the process died or its machine is unreachable); "
                             f"ending this process (exit status {LOST_RANK_EXIT_STATUS})")
                return


def start_watchdog(rank: int, world_size: int, lost_after_s: float) -> HeartbeatWatchdog:
    """Start this process's watchdog on the default group's store (called by init_process_group)."""
    global _watchdog
    from torch.distributed.distributed_c10d import _get_default_store

    stop_watchdog()
    store = _get_default_store()
    # keys of this job only, even in a store that outlived an earlier one (a reused file:// path)
    if rank == 0:
        store.set(_PREFIX + "run", uuid.uuid4().hex)
    dist.barrier()
    run_id = store.get(_PREFIX + "run").decode()
    _watchdog = HeartbeatWatchdog(store.clone(), rank, world_size, lost_after_s, run_id).start()
    return _watchdog


def current_watchdog() -> HeartbeatWatchdog | None:
    """This process's running watchdog, if any."""
    return _watchdog


def stop_watchdog() -> None:
    """Stop this process's watchdog (a no-op without one)."""
    global _watchdog
    if _watchdog is not None:
        _watchdog.stop()
        _watchdog = None
