"""Handoffs: the markdown one session leaves for the next (write.py), read back exactly when it
is ours (read.py) and by its prose when a person wrote it (prose.py)."""

from orchestrator.handoff.read import read_handoff, staleness
from orchestrator.handoff.state import HandoffState, HandoffView, PlannedAgent
from orchestrator.handoff.write import render_handoff, write_handoff

__all__ = [
    "HandoffState",
    "HandoffView",
    "PlannedAgent",
    "read_handoff",
    "render_handoff",
    "staleness",
    "write_handoff",
]
