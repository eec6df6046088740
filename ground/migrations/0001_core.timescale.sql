-- TimescaleDB: hypertables, compression, retention policies and continuous aggregates.
-- The retention interval is (re)applied from settings by `village migrate`.

CREATE TABLE readings (
    device_id text NOT NULL,
    metric text NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, metric, ts)
);
SELECT create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day');
CREATE INDEX readings_received_at ON readings (received_at);
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id, metric',
    timescaledb.compress_orderby = 'ts'
);
-- Compress after the accepted lateness (30 days by default): late data lands uncompressed.
SELECT add_compression_policy('readings', INTERVAL '32 days');

CREATE TABLE events (
    device_id text NOT NULL,
    ts timestamptz NOT NULL,
    type text NOT NULL,
    severity text NOT NULL,
    body jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, type, ts)
);
SELECT create_hypertable('events', 'ts', chunk_time_interval => INTERVAL '7 days');
CREATE INDEX events_ts ON events (ts DESC);

CREATE MATERIALIZED VIEW readings_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       metric,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*) AS count,
       min(value) AS min,
       max(value) AS max,
       avg(value) AS avg,
       first(value, ts) AS first,
       last(value, ts) AS last
FROM readings
GROUP BY device_id, metric, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_hourly',
    start_offset => INTERVAL '32 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '10 minutes');

-- Days are the county's days (Asia/Shanghai), as on the plain path.
CREATE MATERIALIZED VIEW readings_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       metric,
       time_bucket(INTERVAL '1 day', ts, 'Asia/Shanghai') AS bucket,
       count(*) AS count,
       min(value) AS min,
       max(value) AS max,
       avg(value) AS avg,
       first(value, ts) AS first,
       last(value, ts) AS last
FROM readings
GROUP BY device_id, metric, time_bucket(INTERVAL '1 day', ts, 'Asia/Shanghai')
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_daily',
    start_offset => INTERVAL '32 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
