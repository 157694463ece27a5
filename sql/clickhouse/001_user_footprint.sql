-- One row per captured request. Runs unchanged on ClickHouse 18.16 (with
-- allow_experimental_low_cardinality_type=1, which footprint.clickhouse sends only to
-- servers older than 19), on chdb and on current ClickHouse. Tables are created in the
-- connection's database.
--
-- ReplacingMergeTree keyed by event_id: Kafka delivery is at-least-once, so one event may be
-- inserted twice; merges keep one row per sorting key (the latest ingested_at) and
-- `SELECT ... FINAL` collapses duplicates that have not been merged yet. The key starts with
-- the day and the link so time-range dashboards read few granules, and ends with event_id so
-- deduplication is by event. An event's footprint_time never changes, so its copies always
-- share one partition and one key.
CREATE TABLE IF NOT EXISTS user_footprint
(
    event_id       UUID,
    method         LowCardinality(String),
    link           String,
    route          LowCardinality(String),
    status_code    UInt16,
    duration_ms    Float32,
    footprint_time DateTime('UTC'),
    referrer       String,
    referrer_host  LowCardinality(String),
    utm_source     LowCardinality(String),
    utm_medium     LowCardinality(String),
    utm_campaign   String,
    utm_term       String,
    utm_content    String,
    browser        LowCardinality(String),
    os             LowCardinality(String),
    device         LowCardinality(String),
    is_bot         UInt8,
    visitor_id     String,
    user_id        String,
    ingested_at    DateTime('UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(footprint_time)
ORDER BY (toDate(footprint_time), link, event_id);
