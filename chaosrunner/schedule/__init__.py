"""Scheduled chaos: schedule files, the daemon and Kubernetes CronJob export."""
