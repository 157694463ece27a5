-- The sites registry: which domains may send footprints, and who may read each one's stats.
-- Keys and shared links are stored as the sha256 of the token only: the token is shown once,
-- when it is made, and a leaked table cannot be used to read anything.
CREATE TABLE IF NOT EXISTS sites (
    domain     text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS site_keys (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site       text        NOT NULL REFERENCES sites (domain) ON DELETE CASCADE,
    key_hash   bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE IF NOT EXISTS shared_links (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site       text        NOT NULL REFERENCES sites (domain) ON DELETE CASCADE,
    token_hash bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
