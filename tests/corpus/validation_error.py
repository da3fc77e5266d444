"""validation_error shapes."""

SHAPES: tuple = ()
