"""Viewers: the plain log (plain.py) and the terminal UI (tui.py) render the event stream; neither
holds domain logic, and the core never imports them."""
