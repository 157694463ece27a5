-- The host site's social graph (the minimal community API writes it) and the notification inbox.
CREATE TABLE IF NOT EXISTS users (
    id         text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS follows (
    follower_id text        NOT NULL REFERENCES users (id),
    followee_id text        NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (followee_id, follower_id),
    CHECK (follower_id <> followee_id)
);

CREATE TABLE IF NOT EXISTS posts (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id  text        NOT NULL REFERENCES users (id),
    title      text        NOT NULL,
    body       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS comments (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id           bigint      NOT NULL REFERENCES posts (id),
    author_id         text        NOT NULL REFERENCES users (id),
    parent_comment_id bigint      REFERENCES comments (id),
    body              text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS penalties (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      text        NOT NULL REFERENCES users (id),
    moderator_id text        NOT NULL REFERENCES users (id),
    reason       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS user_notifications (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL,
    "user"       text        NOT NULL,
    noti_type    text        NOT NULL,
    payload      jsonb       NOT NULL,
    is_read      boolean     NOT NULL DEFAULT false,
    created_time timestamptz NOT NULL DEFAULT now(),
    -- A replayed event finds its (event, recipient) rows and creates none.
    UNIQUE (event_id, "user")
);

-- The inbox reads a user's newest first, and after a given id on reconnect.
CREATE INDEX IF NOT EXISTS user_notifications_user_id_idx ON user_notifications ("user", id);
CREATE INDEX IF NOT EXISTS user_notifications_unread_idx
    ON user_notifications ("user", id) WHERE NOT is_read;
-- Retention purges by age.
CREATE INDEX IF NOT EXISTS user_notifications_created_idx ON user_notifications (created_time);
