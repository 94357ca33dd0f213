-- A disabled user cannot log in and its tokens stop working (server/src/users.rs).
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
