"""Isolation: which failures pass alone, which earlier test breaks them and what it leaked."""

from orchestrator.isolation.diagnose import bisect, diagnose, order_probe, shuffled_run

__all__ = ["bisect", "diagnose", "order_probe", "shuffled_run"]
