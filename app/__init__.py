"""Ember's Qt layer: a thin window over the engine."""
