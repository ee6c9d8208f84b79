"""The baseline: a bare Starlette app answering every GET with a fixed ~200-byte JSON body.

It is served by ``adserver.launcher.run``, the very function ``adserver serve`` uses, so the
server, loop, HTTP parser and worker settings are the same as adserver's::

    python -m bench.baseline --port 8001 --server uvicorn --workers 1
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adserver.launcher import DEFAULT_SERVER, SERVERS, run

BODY = {
    "site": "site-000",
    "decisions": {
        "top": {"id": "AAAAAAAAAAAAAAAA", "campaign": 1, "creative": 1, "kind": "image"},
        "side": {"id": "BBBBBBBBBBBBBBBB", "campaign": 2, "creative": 2, "kind": "text"},
    },
    "padding": "x" * 24,
}


async def answer(request: Request) -> Response:
    return JSONResponse(BODY)


def create_app() -> Starlette:
    """Any path answers, so the baseline takes the very same request lines as adserver."""
    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=SERVERS, default=DEFAULT_SERVER)
    args = parser.parse_args()
    run(
        "bench.baseline:create_app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        server=args.server,
    )


if __name__ == "__main__":
    main()
