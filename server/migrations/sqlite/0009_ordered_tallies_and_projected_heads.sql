-- Which heads each document has, and which heads its read model was built from (issue #21).
--
-- `heads` is kept by every append (in the same transaction as the changes); `projected_heads`
-- by every projection (in the same transaction as the read-model rows). Where they differ the
-- read model is behind the document, and the reconciler (server/src/reconcile.rs) projects it
-- again. `heads` is NULL for a document stored before this migration until the reconciler
-- reads it once. The partial index holds only the documents that need the reconciler.
--
-- (The PostgreSQL migration of the same number also orders the tally updates; SQLite has one
-- writer, so its triggers cannot deadlock and stay as 0007 made them.)
ALTER TABLE documents ADD COLUMN heads TEXT;
ALTER TABLE documents ADD COLUMN projected_heads TEXT;
CREATE INDEX documents_unprojected ON documents (id)
    WHERE heads IS NULL OR projected_heads IS NULL OR projected_heads <> heads;
