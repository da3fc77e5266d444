"""Triage: a suite run becomes failures with signatures, grouped into categories by cause."""

from orchestrator.triage.report import priority, slow_tests, triage
from orchestrator.triage.signature import is_repo_path, normalise, signature

__all__ = ["is_repo_path", "normalise", "priority", "signature", "slow_tests", "triage"]
