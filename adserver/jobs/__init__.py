"""Scheduled work: the scheduler with its per-period lease, and the registry of jobs."""
