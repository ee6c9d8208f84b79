"""Foundations every capability shares: database, models, vocabularies, money, clock."""
