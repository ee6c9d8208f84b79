"""Run an ASGI app factory under uvicorn or granian with the settings adserver is served with.

``adserver serve`` uses it, and so does the benchmark's bare Starlette baseline, so both are
measured under exactly the same server configuration. Either server runs the app's lifespan in
every worker process (snapshot, event writer, counters) and, on SIGTERM or SIGINT, stops
accepting, finishes requests in flight, then runs the lifespan's shutdown: delivery counters
are flushed and the event writer commits what it has queued.
"""

from __future__ import annotations

SERVERS = ("uvicorn", "granian")
#: Chosen by `make bench` (docs/performance.md).
DEFAULT_SERVER = "uvicorn"
#: Seconds a worker may take to finish requests in flight and its lifespan shutdown.
GRACEFUL_TIMEOUT = 30


def run(factory: str, *, host: str, port: int, workers: int, server: str) -> None:
    """Serve ``factory`` ("module:function" returning the app) until told to stop."""
    if server == "granian":
        _granian(factory, host=host, port=port, workers=workers)
    elif server == "uvicorn":
        _uvicorn(factory, host=host, port=port, workers=workers)
    else:
        raise ValueError(f"unknown server {server!r}; choose one of {', '.join(SERVERS)}")


def _uvicorn(factory: str, *, host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
    )


def _granian(factory: str, *, host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops

    Granian(
        factory,
        factory=True,
        address=host,
        port=port,
        # ASGI with lifespan; "asginl" would skip it and the app would have no services.
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
        # Like uvicorn's supervisor, replace a worker that dies.
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT,
    ).serve()
