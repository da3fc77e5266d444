"""db_schema shapes."""

SHAPES: tuple = ()
