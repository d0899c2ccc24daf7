-- The whole schema, in order. Safe to re-run: every statement is "if not exists"
-- or "on conflict do nothing". Run with: psql -v ON_ERROR_STOP=1 -1 -f sql/run_all.sql
\ir 00_schema.sql
\ir 10_users.sql
\ir 20_rbac.sql
\ir 30_tokens.sql
\ir 40_security.sql
\ir 45_outbox.sql
\ir 50_bootstrap.sql
