"""The embedded sandbox behind `make demo`: a checkout service, its database,
its monitoring in three layers, traffic, and a scripted responder.

The service stands in for a customer's application, so it is written the way
such services are (a connection pool with a max lifetime, RED metrics, a
health endpoint), not the way chaosrunner is. The sandbox's infrastructure -
PostgreSQL, Prometheus, Alertmanager - comes from the same rig the tests use
(scripts/services.sh); the demo adds its scrape targets and alert rules to it.
"""
