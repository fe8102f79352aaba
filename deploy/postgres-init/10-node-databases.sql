-- Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- One database per node: each node owns its schema, migrated by its own `migrate-<node>` one-shot.
-- Keep this list in step with the TW_DATABASE_URL of every node in compose.yaml (tests/deploy checks it).
CREATE DATABASE tw_kz;
CREATE DATABASE tw_kg;
CREATE DATABASE tw_uz;
CREATE DATABASE tw_tj;
CREATE DATABASE tw_tm;
CREATE DATABASE tw_az;
