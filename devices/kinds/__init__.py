"""One module per device kind."""
