"""api_conflict shapes."""

SHAPES: tuple = ()
