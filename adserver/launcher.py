"""Run an ASGI app factory under granian or uvicorn with the settings adserver is served with.

``adserver serve`` uses it, and so does the benchmark's bare Starlette baseline, so both are
measured under exactly the same server configuration. Either server runs the app's lifespan in
every worker process (snapshot, event writer, counters), replaces a worker that dies, honours
X-Forwarded-For from the proxies in ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1) and, on SIGTERM
or SIGINT, stops accepting, finishes requests in flight, then runs the lifespan's shutdown:
delivery counters are flushed and the event writer commits what it has queued.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

SERVERS = ("uvicorn", "granian")
#: uvicorn, measured by `make bench` (docs/performance.md): pinned to one core the two serve
#: adserver within a tenth of each other, either way round by machine; uvicorn needs a third less
#: memory and gains 1.5x-1.9x from a second worker, where one granian worker already takes a
#: second core for its I/O thread. ``--server granian`` is there for one worker on spare cores.
DEFAULT_SERVER = "uvicorn"
#: Seconds a worker may take to finish requests in flight and its lifespan shutdown.
GRACEFUL_TIMEOUT = 30
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_TIMEOUT = 5
#: Seconds uvicorn's supervisor waits for a worker to answer its health check before killing it.
#: Its default, 5, killed every worker of ``--workers 2`` mid start-up on a loaded machine (the
#: lifespan loads the inventory), and their replacements too, so the node never served.
WORKER_HEALTHCHECK_TIMEOUT = 30
#: Seconds a client has to send its request headers (granian; uvicorn has no such setting, so
#: in front of it the reverse proxy of docs/deploy.md cuts off clients that trickle headers).
HEADER_TIMEOUT = 10
_FACTORY = "ADSERVER_APP_FACTORY"


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
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
    )


def _granian(factory: str, *, host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    # Workers are spawned processes: they find the real factory in the environment.
    os.environ[_FACTORY] = factory
    Granian(
        "adserver.launcher:proxied_app",
        factory=True,
        address=host,
        port=port,
        # ASGI with lifespan; "asginl" would skip it and the app would have no services.
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_TIMEOUT * 1000, keep_alive=True),
        websockets=False,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT,
    ).serve()


def proxied_app() -> Any:
    """granian's factory: the app from ``ADSERVER_APP_FACTORY``, with the client address taken
    from X-Forwarded-For when a trusted proxy sends it, as uvicorn does by default."""
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    module, name = os.environ[_FACTORY].split(":")
    app = getattr(importlib.import_module(module), name)()
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    return wrap_asgi_with_proxy_headers(app, trusted_hosts=trusted)
