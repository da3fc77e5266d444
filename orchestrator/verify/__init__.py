"""Verification: a patch is judged by real pytest runs and a static look at its diff, never by
the agent's word."""

from orchestrator.verify.verdict import verify

__all__ = ["verify"]
