-- Sites, event names and custom properties (the query API groups and filters by them).
-- Rows stored before this migration belong to the default site '' and are pageviews.
--
-- Props are two parallel arrays, props.key and props.value (a Nested column), not a Map:
-- ClickHouse 18.16 has no Map, and the arrays work on every version. The value of a prop is
-- props.value[indexOf(props.key, 'name')].
--
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS either: footprint.migrate applies these
-- statements there by looking the column up first.
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS site LowCardinality(String) DEFAULT '';
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS name LowCardinality(String) DEFAULT 'pageview';
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS `props.key` Array(String);
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS `props.value` Array(String);
