"""Tracking: event tokens, traffic classification, intake, the event writer and counters."""
