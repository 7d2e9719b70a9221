"""The results store: every finished run's report JSON, in one place many machines share.

A run's debrief lives beside its journal on the machine that ran it; a team
with a laptop for gamedays and a scheduler in staging has its history in two
places. The results store keeps each finished run's report JSON document (what
``chaosrunner report RUN_ID --format json`` writes) with a few indexed columns
(run id, scenario title, start time, outcome, the machine and state folder it
came from), so ``history`` and what reads across runs work wherever the run
happened.

- ``store``      ``open_store(state_dir, dsn)`` -> ``ResultsStore``: put, run_ids, documents
- ``schema``     the versioned schema: ordered migrations, refused when newer than the code
- ``sqlite``     the default: ``<state>/results.sqlite3``, 0600, WAL, a busy timeout
- ``postgres``   ``CHAOSRUNNER_RESULTS_DSN``: the one results module that imports psycopg
- ``documents``  the indexed columns read out of a report document
- ``record``     the end of a run (report.json beside the journal, into the store) and ``sync``
- ``history``    ``chaosrunner history`` from the store, merged with this state folder

The layer sits between ``report`` (whose JSON it stores) and ``schedule`` (whose
runs it records): it may import report and below, never the other way round.
Nothing here imports psycopg at module scope.
"""
