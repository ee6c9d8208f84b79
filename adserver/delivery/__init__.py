"""Delivery: the pure decision engine, the snapshot it decides from, rendering and pacing."""
