-- DTM's trans_global / trans_branch_op (docs/dtm-protocol.md, Storage), times as Unix milliseconds (UTC).
-- TEXT columns take no DEFAULT on every MySQL version: the store always writes them.
CREATE TABLE IF NOT EXISTS trans_global (
    id                 BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    gid                VARCHAR(128)  NOT NULL UNIQUE,
    trans_type         VARCHAR(45)   NOT NULL,
    status             VARCHAR(12)   NOT NULL,
    protocol           VARCHAR(45)   NOT NULL DEFAULT '',
    query_prepared     VARCHAR(1024) NOT NULL DEFAULT '',
    custom_data        LONGTEXT      NOT NULL,
    options            TEXT          NOT NULL,
    rollback_reason    TEXT          NOT NULL,
    create_time        BIGINT        NOT NULL,
    update_time        BIGINT        NOT NULL,
    finish_time        BIGINT,
    rollback_time      BIGINT,
    next_cron_interval BIGINT        NOT NULL,
    next_cron_time     BIGINT        NOT NULL,
    owner              VARCHAR(128)  NOT NULL DEFAULT '',
    KEY trans_global_due (status, next_cron_time)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS trans_branch_op (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    gid         VARCHAR(128)  NOT NULL,
    url         VARCHAR(1024) NOT NULL DEFAULT '',
    bin_data    LONGBLOB,
    branch_id   VARCHAR(128)  NOT NULL,
    op          VARCHAR(45)   NOT NULL,
    status      VARCHAR(45)   NOT NULL,
    create_time BIGINT        NOT NULL,
    update_time BIGINT        NOT NULL,
    finish_time BIGINT,
    UNIQUE KEY trans_branch_op_key (gid, branch_id, op)
) DEFAULT CHARSET = utf8mb4;
