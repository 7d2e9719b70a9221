"""chaosrunner: a gameday and chaos-engineering orchestrator.

Importing the package must stay cheap: the CLI's start-up time is a feature
(see bench/startup.py), so nothing heavy is imported here.
"""

__version__ = "0.1.0"
