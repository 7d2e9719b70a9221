"""Faults made of programs: ``command.run`` runs an argv to inject and another to revert.

``execution`` is the mechanism (no shell, deadlines, bounded stderr tails, the
environment marker that finds every process an inject started); ``run`` is
the kind itself and its holder side. See docs/faults/command.md.
"""

from chaosrunner.faults.command import run

__all__ = ["run"]
