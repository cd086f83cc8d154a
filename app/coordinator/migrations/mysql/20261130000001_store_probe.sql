-- The health probe's scratch table: each probe inserts a row with a few KiB and deletes it in
-- one committed transaction, proving the store can still allocate and commit.
CREATE TABLE IF NOT EXISTS store_probe (
    owner VARCHAR(128) NOT NULL PRIMARY KEY,
    pad   BLOB
);
