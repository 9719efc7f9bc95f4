"""Ember's kit for testers who drive its UI with pytest-qt: a pytest plugin (fixtures) and helpers.

See docs/testing-ember.md. The plugin (`pytest_plugin`) imports nothing heavy; the helpers import Qt
and the app when a test uses them.
"""
