-- Goods per SKU. `available` can be sold; `frozen` is held by TCC tries until confirm/cancel.
CREATE TABLE stock (
    sku       VARCHAR(64) NOT NULL PRIMARY KEY,
    available BIGINT NOT NULL CHECK (available >= 0),
    frozen    BIGINT NOT NULL DEFAULT 0 CHECK (frozen >= 0)
);
