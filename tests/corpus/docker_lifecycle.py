"""docker_lifecycle shapes."""

SHAPES: tuple = ()
