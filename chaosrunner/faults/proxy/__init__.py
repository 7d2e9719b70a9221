"""The fault proxy: a TCP proxy with toxics, held by a holder process.

Latency without netem, and faults a network cannot make (answers with an HTTP
error status). Two uses:

- the ``proxy.*`` kinds (``faults``): a proxy the scenario places between a
  client and a dependency, ``listen`` to ``upstream``;
- the proxy mechanism of ``docker.network-latency`` / ``docker.network-loss``:
  the same proxy inside a container's network namespace, fed by an iptables
  REDIRECT (``redirect``, ``netns``), relaying to each connection's original
  destination.

Modules: ``toxics`` (what is done to the traffic), ``http`` (request framing
for the http-error toxic), ``server`` (the asyncio relay), ``holder`` (the
proxy as a dead-man's-switch process), ``control`` (switching toxics during a
run), ``lifecycle`` (start/find/stop holders), ``faults`` (the kinds).
Standard library only at run time, besides pydantic for the models.
"""

from chaosrunner.faults.proxy import faults as faults  # registers the proxy.* kinds
