"""The specialists' prompts, shipped as package data and read with importlib.resources."""
