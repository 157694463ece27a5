-- Visits per minute, method and link (bots apart), kept up to date on every insert into
-- user_footprint.
-- SummingMergeTree adds rows with one key together on merge: readers still use
-- sum(visits) ... GROUP BY, since unmerged parts hold partial rows.
--
-- The view counts rows as they are inserted, before ReplacingMergeTree deduplicates: an event
-- delivered twice is counted twice here. Queries that must be exact over redeliveries read
-- user_footprint FINAL instead.
CREATE TABLE IF NOT EXISTS user_footprint_minute
(
    minute DateTime('UTC'),
    is_bot UInt8,
    method LowCardinality(String),
    link   String,
    visits UInt64
)
ENGINE = SummingMergeTree(visits)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, is_bot, method, link);

-- TO an explicit table (not an inner .inner table): the rollup can be dropped, backfilled or
-- re-created independently of the view.
CREATE MATERIALIZED VIEW IF NOT EXISTS user_footprint_minute_mv TO user_footprint_minute AS
SELECT
    toStartOfMinute(footprint_time) AS minute,
    is_bot,
    method,
    link,
    count() AS visits
FROM user_footprint
GROUP BY minute, is_bot, method, link;
