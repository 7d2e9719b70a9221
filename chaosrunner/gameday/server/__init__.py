"""The live run's web server: one per gameday run, started with it, stopped after it.

Everything people touch over the network while a run is live goes through
this one server: today the responder API (``POST``/``GET /events``), later
the facilitator console and the chat commands, added as more routes on the
same app. It is an adapter like the terminal console: it reads the run's
journal and writes marks through ``gameday.marks`` - the function
``chaosrunner mark`` uses - so every source is one kind of journal event with
one validation.

Why each piece is its own module:

- ``token``    the per-run credential: made at start, kept in a 0600 file in
               the run folder, compared in constant time;
- ``guards``   what every request must show before anything reads its body
               (Host, Origin, the token; Content-Type and Content-Length for
               a body), as pure functions of the headers, tested without a
               server;
- ``app``      the Starlette app: the guards as ASGI middleware, a JSON
               error for every refusal, never a traceback;
- ``responder`` the ``/events`` routes;
- ``serving``  uvicorn on a socket we bound ourselves, in a background
               thread, so a port in use fails before the run touches anything;
- ``client``   ``chaosrunner mark --url``: posting a mark to a live run.

Starlette and uvicorn are imported only here (``.importlinter``) and only
when a server starts, so ``chaosrunner --help`` never loads them.
"""
