"""The relay's HTTP stack with nothing behind it: the ceiling the relay's accept rate is measured against.

    python benchmarks/bare_stack.py --port PORT [--app asgi|fastapi]

uvicorn started the way ductape-local starts it (`uvicorn.run`, loop and HTTP parser left to
uvicorn's choice, which is uvloop and httptools when `uvicorn[standard]` is installed: the
server's own dependency), answering every request with 202 and an envelope of the size of the
relay's, after reading the whole body, storing nothing.

  asgi    - a plain ASGI callable: the HTTP stack alone (the goal's denominator);
  fastapi - one FastAPI route of the relay's path: what the framework adds (shown, not judged).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

PATH = "/webhooks/v1/process/{uuid}"
_numbers = itertools.count()


def _answer() -> bytes:
    # The relay answers {"status": true, "meta": {}, "data": {"event_id": "..."}}, an id of 36 characters.
    return json.dumps({"status": True, "meta": {}, "data": {"event_id": f"{next(_numbers):036d}"}}).encode()


async def asgi_app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = _answer()
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def fastapi_app() -> FastAPI:
    app = FastAPI(title="bare-stack")

    @app.api_route(PATH, methods=["POST"], status_code=202)
    async def process_event(uuid: str, request: Request) -> Response:
        await request.body()
        return Response(_answer(), status_code=202, media_type="application/json")

    return app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", choices=("asgi", "fastapi"), default="asgi")
    arguments = parser.parse_args(argv)
    app = asgi_app if arguments.app == "asgi" else fastapi_app()
    uvicorn.run(app, host="127.0.0.1", port=arguments.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=3)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
