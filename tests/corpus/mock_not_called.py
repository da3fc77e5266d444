"""mock_not_called shapes."""

SHAPES: tuple = ()
