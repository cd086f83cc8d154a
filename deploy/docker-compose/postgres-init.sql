-- Profile `backends`: the stock and order databases (dtm, the coordinator's, is POSTGRES_DB).
CREATE DATABASE stock;
CREATE DATABASE "order";
