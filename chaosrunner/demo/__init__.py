"""The embedded sandbox behind `make demo`: a checkout service and its monitoring."""
