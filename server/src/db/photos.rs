//! Who may see a photo: the photos' holders, the documents that reference them, and the claims
//! of references whose author did not hold the photo (migration 0011).
//!
//! A user may see a photo when they hold it (uploaded its bytes), or when they may read a
//! document whose reference to it is *vouched*: no claim on that reference is left whose
//! claimant holds no copy. [`crate::projection`] records the claims; uploads record holders.

use sqlx::Row as _;

use super::{Db, DbError, DbResult, with_pool};

/// A reference counts only when every claim on it is met by its claimant holding the photo.
/// A macro, not a constant, so the queries are literals put together at compile time.
macro_rules! vouched {
    () => {
        "NOT EXISTS (SELECT 1 FROM photo_claims c \
         WHERE c.sha256 = r.sha256 AND c.doc_id = r.doc_id AND NOT EXISTS \
         (SELECT 1 FROM photo_holders p WHERE p.sha256 = c.sha256 AND p.user_id = c.user_id))"
    };
}

impl Db {
    /// Records a stored photo's metadata (the first upload wins; a repeat changes nothing).
    pub async fn record_photo(
        &self,
        meta: &crate::photos::PhotoMeta,
        uploaded_by: &str,
        now_ms: i64,
    ) -> DbResult<()> {
        let json = serde_json::to_string(meta).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let captured = meta.captured_at.as_ref().map(|c| c.local.to_string());
        let (lat, lon) = meta
            .gps
            .as_ref()
            .map(|g| (Some(g.latitude), Some(g.longitude)))
            .unwrap_or((None, None));
        super::retry::with_pool_retry!(self, "photo metadata", pool => {
            sqlx::query(
                "INSERT INTO photos (sha256, byte_size, media_type, width, height, captured_at, gps_lat, gps_lon, uploaded_by, uploaded_at, meta) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(meta.sha256.to_string())
            .bind(meta.byte_size as i64)
            .bind(meta.media_type.mime())
            .bind(i64::from(meta.width))
            .bind(i64::from(meta.height))
            .bind(&captured)
            .bind(lat)
            .bind(lon)
            .bind(uploaded_by)
            .bind(now_ms)
            .bind(&json)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records that `user_id` holds the bytes of photo `sha256`.
    pub async fn add_photo_holder(&self, sha256: &str, user_id: &str) -> DbResult<()> {
        self.add_pair(
            "photo holder",
            "INSERT INTO photo_holders (sha256, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            sha256,
            user_id,
        )
        .await
    }

    /// Records that `user_id` sent bytes of an upload of photo `sha256` in progress.
    pub async fn add_photo_sender(&self, sha256: &str, user_id: &str) -> DbResult<()> {
        self.add_pair(
            "photo sender",
            "INSERT INTO photo_senders (sha256, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            sha256,
            user_id,
        )
        .await
    }

    /// Whether `user_id` sent bytes of photo `sha256`'s upload, or added a reference to it that
    /// waits for its bytes: the ones an upload in progress concerns.
    pub async fn uploads_photo(&self, sha256: &str, user_id: &str) -> DbResult<bool> {
        self.any_row(
            "SELECT 1 FROM photo_senders WHERE sha256 = $1 AND user_id = $2 \
             UNION ALL SELECT 1 FROM photo_claims WHERE sha256 = $1 AND user_id = $2 LIMIT 1",
            sha256,
            user_id,
        )
        .await
    }

    /// Whether `user_id` holds the bytes of photo `sha256`.
    pub async fn holds_photo(&self, sha256: &str, user_id: &str) -> DbResult<bool> {
        self.any_row(
            "SELECT 1 FROM photo_holders WHERE sha256 = $1 AND user_id = $2",
            sha256,
            user_id,
        )
        .await
    }

    /// The enterprises of the documents whose vouched reference to photo `sha256` may show it,
    /// limited to agency `agency`'s documents when it is given (agency staff read only their
    /// own agency's work).
    pub async fn photo_ref_enterprises(
        &self,
        sha256: &str,
        agency: Option<&str>,
    ) -> DbResult<Vec<String>> {
        const SQL: &str = concat!(
            "SELECT r.enterprise_id FROM photo_refs r \
             LEFT JOIN hazards_view h ON h.id = r.doc_id LEFT JOIN visits_view v ON v.id = r.doc_id \
             WHERE r.sha256 = $1 AND ($2 = '' OR COALESCE(h.agency_id, v.agency_id) = $2) AND ",
            vouched!()
        );
        Ok(with_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(sha256)
                .bind(agency.unwrap_or(""))
                .fetch_all(pool)
                .await
                .map_err(DbError::from)?
                .into_iter()
                .map(|r| r.get::<String, _>(0))
                .collect()
        }))
    }

    /// Whether document `doc_id`'s reference to photo `sha256` is vouched (what a notice or
    /// record of the document may show).
    pub async fn photo_ref_vouched(&self, sha256: &str, doc_id: &str) -> DbResult<bool> {
        const SQL: &str = concat!(
            "SELECT 1 FROM photo_refs r WHERE r.sha256 = $1 AND r.doc_id = $2 AND ",
            vouched!()
        );
        self.any_row(SQL, sha256, doc_id).await
    }

    /// Runs an insert of two text parameters, retried like every write.
    async fn add_pair(
        &self,
        what: &'static str,
        sql: &'static str,
        a: &str,
        b: &str,
    ) -> DbResult<()> {
        super::retry::with_pool_retry!(self, what, pool => {
            sqlx::query(sql).bind(a).bind(b).execute(pool).await?;
        });
        Ok(())
    }

    /// Whether a query of two text parameters returns any row.
    async fn any_row(&self, sql: &'static str, a: &str, b: &str) -> DbResult<bool> {
        Ok(with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(a)
                .bind(b)
                .fetch_optional(pool)
                .await
                .map_err(DbError::from)?
                .is_some()
        }))
    }
}
