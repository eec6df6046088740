"""MQTT telemetry into PostgreSQL/TimescaleDB: topics and payloads decoded purely, stored in batches."""
