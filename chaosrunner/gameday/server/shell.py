"""The console's page shell: three fixed files, the same for every run and every person.

    GET /                     console.html
    GET /static/console.js    the page's one script
    GET /static/console.css   its style

They carry no run data, so they need no token - a browser opening a link
cannot send one; the page reads it from the address's fragment and sends it
on every API call. Only these names are served: the request's path picks an
entry of ``FILES`` and never reaches the filesystem. The files come from the
installed package (``importlib.resources``), read once per request (they
are small). HTML goes out with the content security policy: nothing but
these files runs in the page.
"""

from __future__ import annotations

from importlib import resources

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chaosrunner.gameday.server.app import HTML_HEADERS, SAFE_HEADERS, json_reply

PACKAGE = "chaosrunner.gameday.server"
FILES = {
    "/": ("console.html", "text/html; charset=utf-8"),
    "/static/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/static/console.css": ("console.css", "text/css; charset=utf-8"),
}


def read_static(name: str) -> bytes | None:
    try:
        return (resources.files(PACKAGE) / "static" / name).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def shell_routes() -> list[Route]:
    async def serve(request: Request) -> Response:
        name, media_type = FILES[request.url.path]
        content = await run_in_threadpool(read_static, name)
        if content is None:
            return json_reply(404, {"error": f"{name} is not installed with this chaosrunner"})
        headers = HTML_HEADERS if media_type.startswith("text/html") else SAFE_HEADERS
        return Response(content, media_type=media_type, headers=headers)

    return [Route(path, serve, methods=["GET"]) for path in FILES]
