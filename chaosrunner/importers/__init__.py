"""Importers: other tools' documents and records turned into ours.

A team that already has Chaos Toolkit experiments (and the journals of their
past runs) should not have to rewrite them to try chaosrunner. An importer
reads the other tool's file, maps what has a meaning here to the scenario
language (faults, steady-state checks, abort conditions), and refuses the
rest by name and place: a scenario that silently does less than the
experiment it came from would be worse than no import at all.

This layer sits above ``report``: scenario import needs only ``scenario``
and ``faults`` (the registry knows the kinds), and journal import writes a
run folder through ``engine`` and lets ``report`` render it. Nothing here
prints; the cli decides how results look.
"""
