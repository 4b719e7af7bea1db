"""The Dask client of calobench's distributed work (simulate, sweep, compare).

``dask_client(workers, scheduler, option)`` yields a ``distributed.Client``: connected to
``scheduler`` (an address such as ``tcp://host:8786``; default ``$CALOBENCH_SCHEDULER``) when one
is given, else to a fresh ``LocalCluster`` of ``workers`` worker processes with one thread each,
closed on exit. One code path serves a laptop and a batch cluster (docs/scaling.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from calobench.errors import CalobenchError

if TYPE_CHECKING:
    from distributed import Client

#: Environment variable with the address of a running Dask scheduler.
SCHEDULER_ENV = "CALOBENCH_SCHEDULER"


def scheduler_address(scheduler: str | None) -> str | None:
    """The scheduler to connect to: ``scheduler``, else ``$CALOBENCH_SCHEDULER``, else None (local)."""
    address = scheduler if scheduler is not None else os.environ.get(SCHEDULER_ENV) or None
    if address is not None and not address.strip():
        raise CalobenchError("--scheduler: expected a Dask scheduler address such as tcp://host:8786, found ''")
    return address


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise CalobenchError("--workers/--scheduler: dask.distributed is not installed "
                             "(pip install 'dask[distributed]')") from None
    return distributed


@contextmanager
def dask_client(workers: int = 1, scheduler: str | None = None, option: str = "--workers") -> Iterator["Client"]:
    """A Dask client: on ``scheduler`` (or ``$CALOBENCH_SCHEDULER``), else on a LocalCluster of
    ``workers`` processes (threads_per_worker=1) that is closed on exit."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise CalobenchError(f"{option}: expected at least 1 worker, found {workers!r}")
    distributed = _import_distributed()
    address = scheduler_address(scheduler)
    if address is not None:
        try:
            client = distributed.Client(address, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise CalobenchError(f"--scheduler: cannot connect to {address} ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    import logging

    with distributed.LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        yield client
