"""Excess heat and energy: sources, heat pumps, hourly dispatch, source–sink matching, regional impact."""
