-- DTM's trans_global / trans_branch_op (docs/dtm-protocol.md, Storage), times as Unix milliseconds (UTC).
CREATE TABLE IF NOT EXISTS trans_global (
    id                 BIGSERIAL PRIMARY KEY,
    gid                VARCHAR(128)  NOT NULL UNIQUE,
    trans_type         VARCHAR(45)   NOT NULL,
    status             VARCHAR(12)   NOT NULL,
    protocol           VARCHAR(45)   NOT NULL DEFAULT '',
    query_prepared     VARCHAR(1024) NOT NULL DEFAULT '',
    custom_data        TEXT          NOT NULL DEFAULT '',
    options            TEXT          NOT NULL DEFAULT '',
    rollback_reason    TEXT          NOT NULL DEFAULT '',
    create_time        BIGINT        NOT NULL,
    update_time        BIGINT        NOT NULL,
    finish_time        BIGINT,
    rollback_time      BIGINT,
    next_cron_interval BIGINT        NOT NULL,
    next_cron_time     BIGINT        NOT NULL,
    owner              VARCHAR(128)  NOT NULL DEFAULT ''
);
-- The poller's scan: unfinished and due.
CREATE INDEX IF NOT EXISTS trans_global_due ON trans_global (status, next_cron_time);

CREATE TABLE IF NOT EXISTS trans_branch_op (
    id          BIGSERIAL PRIMARY KEY,
    gid         VARCHAR(128)  NOT NULL,
    url         VARCHAR(1024) NOT NULL DEFAULT '',
    bin_data    BYTEA,
    branch_id   VARCHAR(128)  NOT NULL,
    op          VARCHAR(45)   NOT NULL,
    status      VARCHAR(45)   NOT NULL,
    create_time BIGINT        NOT NULL,
    update_time BIGINT        NOT NULL,
    finish_time BIGINT,
    UNIQUE (gid, branch_id, op)
);
