"""pollution shapes."""

SHAPES: tuple = ()
