"""async_event_loop shapes."""

SHAPES: tuple = ()
