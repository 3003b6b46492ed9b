"""The HTTP layer: translates HTTP requests into domain calls and back."""
