-- Background work that must run on one server instance at a time (the reconciler, reminders,
-- webhook deliveries) holds a lease: one row per kind of work, held by one instance until it
-- expires (epoch milliseconds, the instances' wall clocks).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
