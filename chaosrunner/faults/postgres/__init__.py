"""PostgreSQL faults: connection exhaustion, lock contention, slow queries.

Each kind lives in its own module and registers itself on import; this package
imports them so the registry finds all three. ``client`` is the only module
that imports psycopg (import-linter enforces it), ``held`` is what the three
share (a holder process and an ``application_name`` to find its backends by),
and ``holder`` is the entry point of the holder process.
"""

from chaosrunner.faults.postgres import exhaustion, locks, slow_queries

__all__ = ["exhaustion", "locks", "slow_queries"]
