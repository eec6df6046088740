"""The device kind catalogue: what each kind of device sends and accepts (pure, no I/O)."""
