"""uuid_type shapes."""

SHAPES: tuple = ()
