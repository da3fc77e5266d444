"""api_routing shapes."""

SHAPES: tuple = ()
