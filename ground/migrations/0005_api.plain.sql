-- Plain PostgreSQL: the API's per-place aggregates read one metric's buckets of every device
-- over a time range; the rollups' primary keys lead with the device. (On TimescaleDB the
-- rollups are continuous aggregates, indexed by TimescaleDB on their buckets.)
CREATE INDEX readings_daily_metric_bucket ON readings_daily (metric, bucket);
CREATE INDEX readings_hourly_metric_bucket ON readings_hourly (metric, bucket);
