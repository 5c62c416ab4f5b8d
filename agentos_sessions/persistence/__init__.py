"""Persistence on Agno's storage layout: engines, models and store functions."""
