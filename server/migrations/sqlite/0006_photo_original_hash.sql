-- The camera original's SHA-256 beside the uploaded copy's (PhotoRef.original_sha256): phones
-- upload a downscaled, re-encoded copy and keep the original as evidence. NULL for web uploads
-- (the uploaded file is the original) and for references written before the field existed.
ALTER TABLE photo_refs ADD COLUMN original_sha256 TEXT;
