-- Orders. Times are Unix milliseconds, UTC.
CREATE TABLE orders (
    id          VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    sku         VARCHAR(64) NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity > 0),
    status      VARCHAR(16) NOT NULL, -- PENDING, CREATED, CANCELLED
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX orders_user_time ON orders (user_id, create_time);
CREATE INDEX orders_time ON orders (create_time);
