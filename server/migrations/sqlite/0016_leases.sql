-- Background work that must run on one server instance at a time (the reconciler, reminders,
-- webhook deliveries) holds a lease: one row per kind of work, held by one instance until it
-- expires. Only PostgreSQL, which several instances may share, consults it; SQLite has one
-- server per file, and the table is here so that both schemas stay alike.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
