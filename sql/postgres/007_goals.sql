-- Goals and funnels of a site (configured through /api/v1/sites/goals and /api/v1/sites/funnels).
-- A goal is an event name or a page path with wildcards (* within a segment, ** across), never
-- both; its display name is what the query API's event:goal dimension and filter show and take.
CREATE TABLE IF NOT EXISTS goals (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site         text        NOT NULL REFERENCES sites (domain) ON DELETE CASCADE,
    event_name   text,
    page_path    text,
    display_name text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT goals_one_kind CHECK ((event_name IS NULL) <> (page_path IS NULL)),
    CONSTRAINT goals_site_display_name UNIQUE (site, display_name)
);
-- One goal per event name and per path: creating it again finds the one there (PUT is idempotent).
CREATE UNIQUE INDEX IF NOT EXISTS goals_site_event_idx ON goals (site, event_name)
    WHERE event_name IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS goals_site_page_idx ON goals (site, page_path)
    WHERE page_path IS NOT NULL;

CREATE TABLE IF NOT EXISTS funnels (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site       text        NOT NULL REFERENCES sites (domain) ON DELETE CASCADE,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT funnels_site_name UNIQUE (site, name)
);

-- A goal in a funnel cannot be deleted (NO ACTION, checked at the end of the statement: removing
-- the whole site removes its funnels and goals together).
CREATE TABLE IF NOT EXISTS funnel_steps (
    funnel_id bigint   NOT NULL REFERENCES funnels (id) ON DELETE CASCADE,
    step      smallint NOT NULL CHECK (step BETWEEN 1 AND 8),
    goal_id   bigint   NOT NULL REFERENCES goals (id),
    PRIMARY KEY (funnel_id, step)
);
CREATE INDEX IF NOT EXISTS funnel_steps_goal_idx ON funnel_steps (goal_id);
