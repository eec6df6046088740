"""Devices: the kind catalogue, the contract's topics and codec, the registry's records and
CSV format (all pure, no I/O); and the impure modules: the registry's SQL adapter
(`devices.store`), the service both doors call (`devices.service`), the telemetry
queries (`devices.telemetry`: latest values, series, per-place aggregates), and live broker
access (`devices.access_queue`, `devices.access_sync`, `devices.broker_logins`)."""
