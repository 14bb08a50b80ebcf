-- Run once by the postgres image's entrypoint, in POSTGRES_DB, when the data volume is new.
CREATE EXTENSION IF NOT EXISTS vector;
