-- The transactional outbox: a community action writes its notification event here in its own
-- transaction; the API's relay (api/outbox.py) publishes the rows after commit and deletes them
-- once the broker has acknowledged them. A rolled-back action leaves no row, so no event.
CREATE TABLE IF NOT EXISTS outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The event's own id, also inside value: a row published twice (relay crash between the
    -- broker's acknowledgement and the delete) is recognised by the consumer.
    event_id   uuid        NOT NULL,
    topic      text        NOT NULL,
    key        bytea,
    value      bytea       NOT NULL,
    -- Kafka headers as [[name, value], …] (values UTF-8 text).
    headers    jsonb       NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The relay checks, per key, whether an older row is held by another relay (per-key order).
CREATE INDEX IF NOT EXISTS outbox_key_id_idx ON outbox (key, id);
