-- Which dispatcher sends for a channel: one instance at a time, so a channel's rate holds for
-- the channel as a whole. A lease that is not renewed lapses and another instance takes over.
CREATE TABLE channel_owners (
    channel_id  TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    until       INTEGER NOT NULL
);
