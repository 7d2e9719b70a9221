"""Gameday: responder events, time to detect/mitigate/recover, and scoring."""
