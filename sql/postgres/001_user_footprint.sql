-- The footprint system of record: the reference table (id, method, link, footprint_time)
-- plus the capture fields. One row per event id, whatever the number of deliveries.
CREATE TABLE IF NOT EXISTS user_footprint (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       uuid        NOT NULL,
    method         varchar(16) NOT NULL,
    link           text        NOT NULL,
    footprint_time timestamptz NOT NULL,
    route          text        NOT NULL DEFAULT '',
    status_code    smallint    NOT NULL DEFAULT 0,
    duration_ms    real        NOT NULL DEFAULT 0,
    referrer       text        NOT NULL DEFAULT '',
    referrer_host  text        NOT NULL DEFAULT '',
    utm_source     text        NOT NULL DEFAULT '',
    utm_medium     text        NOT NULL DEFAULT '',
    utm_campaign   text        NOT NULL DEFAULT '',
    utm_term       text        NOT NULL DEFAULT '',
    utm_content    text        NOT NULL DEFAULT '',
    browser        text        NOT NULL DEFAULT '',
    os             text        NOT NULL DEFAULT '',
    device         text        NOT NULL DEFAULT '',
    is_bot         boolean     NOT NULL DEFAULT false,
    visitor_id     text        NOT NULL DEFAULT '',
    user_id        text        NOT NULL DEFAULT '',
    -- Where the stored copy was read: a duplicate copy of the event (a producer retry) found
    -- at another offset is recognised and not counted anywhere.
    source_partition integer   NOT NULL DEFAULT -1,
    source_offset  bigint      NOT NULL DEFAULT -1,
    ingested_at    timestamptz NOT NULL DEFAULT now()
);

-- Idempotency: a replayed event finds its id taken and is skipped (ON CONFLICT DO NOTHING).
-- With its time: 006 partitions the table by it, and a partitioned table's unique keys must
-- hold the partition key (a database made before keeps its index of this name until 006).
CREATE UNIQUE INDEX IF NOT EXISTS user_footprint_event_id_key
    ON user_footprint (event_id, footprint_time);

-- The dashboard reads time ranges: totals, top (method, link) and 15-minute buckets.
-- INCLUDE lets all three run as index-only scans (is_bot: bots are counted apart).
CREATE INDEX IF NOT EXISTS user_footprint_time_idx
    ON user_footprint (footprint_time) INCLUDE (method, link, is_bot);
