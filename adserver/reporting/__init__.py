"""Reporting: hourly statistics, the tally that fills them, and the stats everyone reads."""
