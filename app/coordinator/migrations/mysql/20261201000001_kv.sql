-- DTM's KV table: category, key, value, a version every change increments (compare-and-set).
-- The coordinator keeps msg topics here: cat 'topics', k the topic, v its subscribers as JSON.
CREATE TABLE IF NOT EXISTS kv (
    cat     VARCHAR(45) NOT NULL,
    k       VARCHAR(128) NOT NULL,
    v       MEDIUMTEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (cat, k)
);
