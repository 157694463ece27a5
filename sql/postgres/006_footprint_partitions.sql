-- Raw footprints by UTC month: retention drops a whole month's partition (footprint.retention)
-- instead of deleting its rows one by one, which would bloat the table and its indexes.
--
-- A partitioned table's unique keys must hold the partition key: the event id is unique per
-- (event_id, footprint_time). A re-delivered event is the same message, with the same time,
-- so it still finds its row taken (streams/sinks/postgres.py: ON CONFLICT (event_id,
-- footprint_time)). Rows whose month has no partition yet land in user_footprint_default
-- and are moved into their month's partition when it is made: no footprint is ever refused
-- for its date.

-- A site may keep its raw footprints for less (or more) than FOOTPRINT_RAW_RETENTION_DAYS.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS raw_retention_days integer
    CHECK (raw_retention_days > 0);

-- Make the partition of one UTC month (a no-op when it exists): the month's rows already in
-- the default partition move into it, so attaching it never fails on them.
CREATE OR REPLACE FUNCTION footprint_month_partition(month date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('user_footprint_p%s', to_char(month, 'YYYYMM'));
    lo timestamptz := date_trunc('month', month)::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (date_trunc('month', month) + interval '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- Writers wait while the month's rows move: one committed between the move and the
    -- attach would make the attach fail.
    LOCK TABLE user_footprint_default IN SHARE ROW EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE %I (LIKE user_footprint INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM user_footprint_default '
        'WHERE footprint_time >= $1 AND footprint_time < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
    EXECUTE format('ALTER TABLE user_footprint ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    RETURN part;
END
$$;

-- The partitions of the months the default partition holds rows of, and of this month and the
-- next months_ahead ones; returns the partitions it made. Run by every migration and by the
-- retention job (footprint retention run, the worker's timer).
CREATE OR REPLACE FUNCTION footprint_ensure_partitions(months_ahead integer) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    month date;
    made text;
BEGIN
    -- The API's and the workers' migrations, and the timer, may run it at once.
    PERFORM pg_advisory_xact_lock(hashtext('footprint.partitions'));
    FOR month IN
        SELECT date_trunc('month', footprint_time AT TIME ZONE 'UTC')::date
        FROM user_footprint_default
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date
        FROM generate_series(0, months_ahead) AS i
        ORDER BY 1
    LOOP
        made := footprint_month_partition(month);
        IF made IS NOT NULL THEN
            RETURN NEXT made;
        END IF;
    END LOOP;
END
$$;

-- The conversion of a plain table (001 made it; a database of an earlier version holds rows):
-- a partitioned copy takes every row, with its id, in this file's one transaction.
DO $$
DECLARE
    month date;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'user_footprint'::regclass) <> 'r' THEN
        RETURN;
    END IF;
    ALTER TABLE user_footprint RENAME TO user_footprint_unpartitioned;
    -- LIKE keeps every column in order, also ones later migrations add.
    CREATE TABLE user_footprint (
        LIKE user_footprint_unpartitioned
        INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS
    ) PARTITION BY RANGE (footprint_time);
    CREATE TABLE user_footprint_default PARTITION OF user_footprint DEFAULT;
    FOR month IN
        SELECT DISTINCT date_trunc('month', footprint_time AT TIME ZONE 'UTC')::date
        FROM user_footprint_unpartitioned
    LOOP
        PERFORM footprint_month_partition(month);
    END LOOP;
    INSERT INTO user_footprint OVERRIDING SYSTEM VALUE SELECT * FROM user_footprint_unpartitioned;
    PERFORM setval(
        pg_get_serial_sequence('user_footprint', 'id'),
        coalesce((SELECT max(id) FROM user_footprint_unpartitioned), 1),
        (SELECT count(*) > 0 FROM user_footprint_unpartitioned)
    );
    -- The old table goes with its indexes: their names are taken again just below.
    DROP TABLE user_footprint_unpartitioned;
    ALTER TABLE user_footprint ADD PRIMARY KEY (id, footprint_time);
END
$$;

-- The same index names as 001 and 004, so their IF NOT EXISTS finds these.
CREATE UNIQUE INDEX IF NOT EXISTS user_footprint_event_id_key
    ON user_footprint (event_id, footprint_time);
CREATE INDEX IF NOT EXISTS user_footprint_time_idx
    ON user_footprint (footprint_time) INCLUDE (method, link, is_bot);
CREATE INDEX IF NOT EXISTS user_footprint_site_time_idx ON user_footprint (site, footprint_time);
-- User deletion and export find a user's footprints.
CREATE INDEX IF NOT EXISTS user_footprint_user_idx ON user_footprint (user_id);

-- Partitions ahead at every start-up; a long-running worker's retention timer keeps it up.
SELECT footprint_ensure_partitions(2);
