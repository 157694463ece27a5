-- Sites, event names and custom properties (the query API groups and filters by them).
-- Rows stored before this migration belong to the default site "" and are pageviews.
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS site  text  NOT NULL DEFAULT '';
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS name  text  NOT NULL DEFAULT 'pageview';
ALTER TABLE user_footprint ADD COLUMN IF NOT EXISTS props jsonb NOT NULL DEFAULT '{}';

-- Every query of /api/v2/query reads one site over a time range.
CREATE INDEX IF NOT EXISTS user_footprint_site_time_idx ON user_footprint (site, footprint_time);
