#!/bin/sh
# Runs once, when the PostgreSQL volume is new: the payroll sample schema
# (deploy/sql/payroll.sql) for the gateway's "payroll" app (SQL adapter).
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c 'CREATE SCHEMA payroll'
PGOPTIONS='-c search_path=payroll' \
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /payroll.sql
