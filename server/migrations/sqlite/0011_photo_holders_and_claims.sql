-- Who may see a photo (issue #19): a reference by a document lets its readers see the photo
-- only if the one who added the reference holds the photo's bytes. Holding is shown by
-- uploading them: the uploader, and anyone who sends the same bytes again in full.
CREATE TABLE photo_holders (
    sha256  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (sha256, user_id)
) STRICT;
INSERT INTO photo_holders (sha256, user_id) SELECT sha256, uploaded_by FROM photos;

-- A reference added by someone who did not hold the photo when the document was projected.
-- While its claimant holds no copy, the reference shows the photo to nobody; the phone that
-- took the photo uploads it after syncing the document, and the claim is then met.
CREATE TABLE photo_claims (
    sha256  TEXT NOT NULL,
    doc_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (sha256, doc_id, user_id)
) STRICT;

-- Who has sent bytes of an upload still in progress: they alone (with those who may see the
-- photo and those whose references wait for it) learn where the upload stands.
CREATE TABLE photo_senders (
    sha256  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (sha256, user_id)
) STRICT;
