"""collection_error shapes."""

SHAPES: tuple = ()
