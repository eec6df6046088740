"""Devices: the kind catalogue, the contract's topics and codec, the registry's records and
CSV format (all pure, no I/O); and the registry's two impure modules, the SQL adapter
(`devices.store`) and the service both doors call (`devices.service`)."""
