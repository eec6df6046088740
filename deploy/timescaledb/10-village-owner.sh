#!/bin/sh
# First start of the database only: the migration role, which owns the `village` database
# and its schema and creates the services' logins (`village db roles`). TimescaleDB itself
# was created in the database by the image, as the superuser.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$DB_OWNER_PASSWORD" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE village_owner LOGIN CREATEROLE PASSWORD :'owner_password';
-- village migrate makes the alerting role a member (it must see ingest's open transactions);
-- PostgreSQL 16 and later let a CREATEROLE role grant only what it holds WITH ADMIN OPTION.
GRANT pg_read_all_stats TO village_owner WITH ADMIN OPTION;
ALTER DATABASE :"db" OWNER TO village_owner;
ALTER SCHEMA public OWNER TO village_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
