"""The live run's web server: one per gameday run, started with it, stopped after it.

Everything people touch over the network while a run is live goes through
this one server: the responder API (``POST``/``GET /events``), the
facilitator console (its page shell and ``/api/...``) and, later, the chat
commands, as routes on the same app. It is an adapter like the terminal
console: it reads the run's journal and the runner's events and writes
through the functions the CLI uses (``gameday.marks``, ``gameday.run_sheet``,
``RunDir.request_abort``), so every source is one kind of journal event with
one validation.

Why each piece is its own module:

- ``token``    the per-run credentials: three tokens (facilitator, team,
               observer), each in its own 0600 file in the run folder,
               compared in constant time;
- ``guards``   what every request must show before anything reads its body
               (Host, Origin, the token and so its capability; Content-Type
               and Content-Length for a body), as pure functions of the
               headers, tested without a server;
- ``app``      the Starlette app: the guards as ASGI middleware, a JSON
               error for every refusal, never a traceback;
- ``bodies``   reading a JSON body within its bounds;
- ``responder`` the ``/events`` routes;
- ``shell``    the console's three static files (public, fixed names, CSP);
- ``console_api``, ``run_view``, ``stream``, ``actions``
               the console's API: the run view, the event stream, the
               team's actions;
- ``feed``     one journal reader per server, fanned out to every stream;
- ``live_run`` what the console routes read about the run;
- ``serving``  uvicorn on a socket we bound ourselves, in a background
               thread, so a port in use fails before the run touches anything;
- ``client``   ``chaosrunner mark --url``: posting a mark to a live run.

Starlette, uvicorn and sse-starlette are imported only here (``.importlinter``) and only
when a server starts, so ``chaosrunner --help`` never loads them.
"""
