"""Interactive notebook widgets (ipywidgets and matplotlib), each with a static fallback."""
