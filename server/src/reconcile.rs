//! Keeping the read models level with the documents, whatever failed on the way.
//!
//! Every sync and web action projects the documents it changed at once
//! ([`crate::projection::project_current`]). A projection can still fail after the changes are
//! durable: the database refuses a statement, the connection drops, the process is killed between
//! the append and the projection. The document is then ahead of its read model, and before this
//! module nothing noticed: a hazard closed on every phone showed `submitted` on the web for good
//! (issue #21).
//!
//! Each document row records the heads of the stored document (`documents.heads`, written by
//! every append) and the heads its read model was built from (`documents.projected_heads`,
//! written by every projection in the same transaction as its rows). The reconciler projects
//! every document where the two differ, at start-up, every `reconcile_interval`, and soon after a
//! projection fails ([`Reconciler::nudge`]). A document stored before migration 0009 has no
//! recorded heads: the reconciler reads them once from the document, then projects it.

use std::sync::Arc;
use std::time::Duration;

use sync_core::store::DocumentStore as _;

use crate::AppState;

/// How many documents one query of a pass asks for.
const PAGE: i64 = 256;

/// The wake-up call of the reconciler, shared by everything that projects.
#[derive(Debug, Default)]
pub struct Reconciler {
    wake: tokio::sync::Notify,
}

impl Reconciler {
    /// Asks for a pass soon (a projection failed).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Documents whose heads were read because they had none recorded.
    pub heads_filled: usize,
    /// Documents projected again.
    pub projected: usize,
    /// Documents whose projection failed again (tried on the next pass).
    pub failed: usize,
}

/// One pass over every document whose read model is behind it.
pub async fn reconcile_once(state: &AppState) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    let mut after = String::new();
    loop {
        let page = state.db.unprojected_docs(&after, PAGE).await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = last.clone();
        for (id, heads, _) in page {
            let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
                tracing::error!(doc = %id, "document with a malformed id");
                pass.failed += 1;
                continue;
            };
            if heads.is_none() {
                match fill_heads(state, uuid).await {
                    Ok(()) => pass.heads_filled += 1,
                    Err(error) => {
                        tracing::warn!(%error, doc = %id, "cannot read the heads of a document");
                        pass.failed += 1;
                        continue;
                    }
                }
            }
            let now_ms = crate::clock::to_millis(state.clock.now());
            match crate::projection::project_current(&state.hub, &state.db, uuid, None, now_ms)
                .await
            {
                Ok(()) => {
                    pass.projected += 1;
                    // Pages showing the document hear of its repaired read model too.
                    if let Ok(Some(doc)) = state.hub.load_shared(uuid).await
                        && let Ok(header) = sync_core::doc::read_header(&doc)
                    {
                        state.changes.announce(&header);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, doc = %id, "projection failed again");
                    pass.failed += 1;
                }
            }
        }
    }
    if pass != Pass::default() {
        tracing::info!(?pass, "read models reconciled");
    }
    Ok(pass)
}

async fn fill_heads(state: &AppState, id: uuid::Uuid) -> anyhow::Result<()> {
    let Some(loaded) = state.db.load(id).await? else {
        return Ok(());
    };
    let last_seq = i64::try_from(loaded.meta.last_seq)?;
    let doc = loaded.into_automerge()?;
    let heads = crate::db::heads_text(doc.get_heads().iter().map(|h| &h.0));
    state
        .db
        .fill_heads(&id.to_string(), last_seq, heads)
        .await?;
    Ok(())
}

/// The reconciler's lease among instances sharing a database ([`crate::runs_here`]).
pub const LEASE: &str = "reconcile";

/// Runs a pass now, then every `every`, and soon after each [`Reconciler::nudge`] (after a
/// short pause, so that a burst of failures makes one pass, and so that a failing database is
/// not hammered). Runs until the task is aborted.
pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    let reconciler: Arc<Reconciler> = state.reconciler.clone();
    tokio::spawn(async move {
        // Instances sharing a database reconcile one at a time; a pass repairs every
        // document behind its read model, whichever instance failed to project it.
        let ttl = (every * 3).max(Duration::from_secs(3));
        loop {
            if crate::runs_here(&state, LEASE, ttl).await
                && let Err(error) = reconcile_once(&state).await
            {
                tracing::warn!(%error, "reconciling the read models failed");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = reconciler.wake.notified() => {
                    tokio::time::sleep(NUDGE_PAUSE).await;
                }
            }
        }
    })
}

/// How long a nudged reconciler waits before its pass.
const NUDGE_PAUSE: Duration = Duration::from_millis(500);
