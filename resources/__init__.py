"""Icons, styles and prompt presets, read with importlib.resources."""
