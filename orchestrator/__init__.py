"""orchestrate: turn a red pytest suite green."""

__version__ = "0.1.0"
