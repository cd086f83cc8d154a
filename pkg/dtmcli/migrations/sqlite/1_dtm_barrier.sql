-- The sub-transaction barrier (docs/dtm-protocol.md, The barrier), SQLite flavour: one table in the business database.
CREATE TABLE IF NOT EXISTS dtm_barrier (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    trans_type  TEXT NOT NULL DEFAULT '',
    gid         TEXT NOT NULL DEFAULT '',
    branch_id   TEXT NOT NULL DEFAULT '',
    op          TEXT NOT NULL DEFAULT '',
    barrier_id  TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '', -- the op that inserted this row
    create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id)
);
CREATE INDEX IF NOT EXISTS dtm_barrier_create_time ON dtm_barrier (create_time);
CREATE INDEX IF NOT EXISTS dtm_barrier_update_time ON dtm_barrier (update_time);
