"""Physics of each simulated device kind (pure)."""
