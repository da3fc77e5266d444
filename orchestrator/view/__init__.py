"""Viewers: the plain log (plain.py) and the terminal UI (tui.py, its text in panels.py) both fold
the event stream into one `RunProgress` (progress.py) and render it; the triage table (triage.py)
renders a report. No domain logic here, and the core never imports this package."""
