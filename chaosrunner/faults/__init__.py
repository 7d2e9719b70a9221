"""Fault backends: one module (or package) per target system, plus the registry.

``base`` defines the plan/inject/revert/check protocol, ``registry`` the catalog
keyed by kind name, ``connections`` how a backend reaches its target. Nothing
here imports the scenario, the engine or any layer above.
"""
