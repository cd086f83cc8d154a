-- The sub-transaction barrier (docs/dtm-protocol.md, The barrier), as DTM's sqls/dtmcli.barrier.mysql.sql.
CREATE DATABASE IF NOT EXISTS dtm_barrier;
CREATE TABLE IF NOT EXISTS dtm_barrier.barrier (
    id          bigint(22) PRIMARY KEY AUTO_INCREMENT,
    trans_type  varchar(45) DEFAULT '',
    gid         varchar(128) DEFAULT '',
    branch_id   varchar(128) DEFAULT '',
    op          varchar(45) DEFAULT '',
    barrier_id  varchar(45) DEFAULT '',
    reason      varchar(45) DEFAULT '' COMMENT 'the op that inserted this row',
    create_time datetime DEFAULT now(),
    update_time datetime DEFAULT now(),
    KEY (create_time),
    KEY (update_time),
    UNIQUE KEY uniq_barrier (gid, branch_id, op, barrier_id)
);
