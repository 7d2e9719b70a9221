"""Observing the target through Prometheus and Alertmanager, behind one small
interface so the engine never speaks HTTP."""
