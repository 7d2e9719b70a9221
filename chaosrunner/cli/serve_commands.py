"""``chaosrunner serve``: browse past runs and their debrief reports in the console page."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port on 127.0.0.1 [default: 0, any free port].",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Listen elsewhere than loopback (put TLS in front; see docs/serve.md).",
)
@click.option(
    "--chat",
    is_flag=True,
    help="Also answer Slack's and Mattermost's /gameday (and :stopwatch:) for every live gameday run, "
    "each picked by its channel; secrets from this environment (see docs/chat-ops.md).",
)
def serve(port: int | None, listen: str | None, chat: bool) -> None:
    """Serve past runs read-only: the run list and each run's report, in the console page.

    Prints the page's address with a fresh token once, then serves until
    Ctrl-C (or SIGTERM).
    """
    from chaosrunner.errors import UsageError
    from chaosrunner.gameday.endpoint import parse_listen
    from chaosrunner.gameday.server.browse import LOOPBACK, PastRunsServer
    from chaosrunner.report.past_runs import PastRuns
    from chaosrunner.signals import set_event_handler

    if listen is not None and port is not None:
        raise UsageError("give --port or --listen, not both")
    host, chosen = parse_listen(listen) if listen is not None else (LOOPBACK, port or 0)
    router = None
    more_routes: list[Any] = []
    if chat:
        import os

        from chaosrunner.gameday.chat.routing import ChatRouter, LiveGamedays
        from chaosrunner.gameday.server.chat_routes import chat_routes

        router = ChatRouter(LiveGamedays(os.environ))
        more_routes = chat_routes(router.handlers())
    server = PastRunsServer(PastRuns(), host, chosen, more_routes=more_routes)
    stop = threading.Event()
    handler = set_event_handler(stop)
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        click.echo(f"chaosrunner serve: {server.url}", err=True)
        if chat:
            base = server.url.partition("/#")[0]
            click.echo(
                f"chaosrunner serve: chat for every live gameday at {base}/chat/slack/commands, "
                f"{base}/chat/slack/events and {base}/chat/mattermost/commands",
                err=True,
            )
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        if router is not None:
            router.close()
        for signum, old in previous.items():
            signal.signal(signum, old)
    click.echo("chaosrunner serve: stopped", err=True)
