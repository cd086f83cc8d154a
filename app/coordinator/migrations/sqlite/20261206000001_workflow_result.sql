-- What a workflow returned, as its client submitted it (base64 text): read by a later execution of
-- the same gid. Nullable so that adding it rewrites no row; read as '' when NULL.
ALTER TABLE trans_global ADD COLUMN result TEXT;
