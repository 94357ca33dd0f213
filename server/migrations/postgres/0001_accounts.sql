-- Accounts: organisations, users, contracts, devices and tokens.
--
-- Storage conventions, identical in the SQLite twin of this file so that one Rust query serves both:
--   * ids are TEXT: lowercase hyphenated UUIDs (v4), except tokens, keyed by their SHA-256 hash in hex;
--   * instants (`*_at`) are BIGINT Unix epoch milliseconds, UTC;
--   * calendar dates (`*_on`) are TEXT ISO-8601 `YYYY-MM-DD`, meaning the date in China Standard Time,
--     so that string comparison is date comparison;
--   * enumerations are TEXT with a CHECK listing the allowed values.
-- The (id, kind) pairs with constant `*_kind` columns let a foreign key say which kind of organisation it
-- points at, so the role rules hold in the database and not only in the code.

CREATE TABLE organisations (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('township', 'agency', 'enterprise')),
    name       TEXT NOT NULL CHECK (length(name) > 0),
    created_at BIGINT NOT NULL,
    UNIQUE (id, kind)
);

-- Enterprises are imported by township name, so a township name must name one township.
CREATE UNIQUE INDEX organisations_township_name ON organisations (name) WHERE kind = 'township';

-- Industrial parks (工业园区) are named within their township.
CREATE TABLE township_parks (
    township_id   TEXT NOT NULL,
    township_kind TEXT NOT NULL DEFAULT 'township' CHECK (township_kind = 'township'),
    name          TEXT NOT NULL CHECK (length(name) > 0),
    PRIMARY KEY (township_id, name),
    FOREIGN KEY (township_id, township_kind) REFERENCES organisations (id, kind)
);

CREATE TABLE enterprises (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL DEFAULT 'enterprise' CHECK (kind = 'enterprise'),
    -- 统一社会信用代码, GB 32100-2015, validated (check digit included) before insert.
    uscc          TEXT NOT NULL UNIQUE CHECK (length(uscc) = 18),
    address       TEXT NOT NULL,
    township_id   TEXT NOT NULL,
    township_kind TEXT NOT NULL DEFAULT 'township' CHECK (township_kind = 'township'),
    industry      TEXT NOT NULL,
    park          TEXT,
    FOREIGN KEY (id, kind) REFERENCES organisations (id, kind),
    FOREIGN KEY (township_id, township_kind) REFERENCES organisations (id, kind),
    -- MATCH SIMPLE (the default on both backends): a NULL park is not checked.
    FOREIGN KEY (township_id, park) REFERENCES township_parks (township_id, name)
);
CREATE INDEX enterprises_township ON enterprises (township_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE CHECK (length(username) > 0),
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL
        CHECK (role IN ('inspector', 'enterprise_manager', 'supervisor', 'agency_admin')),
    org_id        TEXT NOT NULL,
    org_kind      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    FOREIGN KEY (org_id, org_kind) REFERENCES organisations (id, kind),
    CHECK (
        (role IN ('inspector', 'agency_admin') AND org_kind = 'agency')
        OR (role = 'enterprise_manager' AND org_kind = 'enterprise')
        OR (role = 'supervisor' AND org_kind = 'township')
    )
);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE contracts (
    id                  TEXT PRIMARY KEY,
    agency_id           TEXT NOT NULL,
    agency_kind         TEXT NOT NULL DEFAULT 'agency' CHECK (agency_kind = 'agency'),
    enterprise_id       TEXT NOT NULL REFERENCES enterprises (id),
    starts_on           TEXT NOT NULL CHECK (length(starts_on) = 10),
    ends_on             TEXT NOT NULL CHECK (length(ends_on) = 10),
    filed_with_township BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT NOT NULL,
    CHECK (starts_on <= ends_on),
    FOREIGN KEY (agency_id, agency_kind) REFERENCES organisations (id, kind)
);
CREATE INDEX contracts_agency ON contracts (agency_id, starts_on, ends_on);
CREATE INDEX contracts_enterprise ON contracts (enterprise_id);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL,
    platform   TEXT NOT NULL,
    -- Automerge actor id bound to this user on this device: 16 random bytes, lowercase hex.
    actor_id   TEXT NOT NULL UNIQUE CHECK (length(actor_id) = 32),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

-- Opaque bearer tokens; only their SHA-256 is stored. An access token and the refresh token issued with
-- it share a session id, kept across refresh rotation, so logout and reuse detection act per session.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY CHECK (length(hash) = 64),
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    session_id TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    device_id  TEXT REFERENCES devices (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX tokens_session ON tokens (session_id);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_device ON tokens (device_id);
