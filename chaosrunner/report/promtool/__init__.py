"""A run's detection as a promtool rule test (``chaosrunner export-promtool``).

- ``selectors``: which series an alert rule's PromQL reads, and how far back.
- ``notation``: promtool's expanding series notation, exact where it compresses.
- ``rule_files``: the team's rule files, read as promtool will read them.
- ``document``: when to assert and what an alert looks like (pure).
- ``export``: the journal and Prometheus in, the YAML out (0600).
"""
