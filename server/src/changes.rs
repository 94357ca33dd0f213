//! `GET /api/v1/events/stream`: Server-Sent Events telling a page that documents in its scope
//! changed, so the dashboard refreshes itself instead of polling.
//!
//! After a sync or a web action has projected a document, [`Changes::announce`] broadcasts its
//! id, kind, enterprise, agency and township to every open stream; each stream passes on only
//! what its user may read (the scope computed when it opened; agency staff: their agency's
//! documents only), as `event: change` with a JSON body. A stream ends when the access token it
//! opened with would have expired (the page reconnects with a fresh one); a stream that fell
//! behind the broadcast gets `event: resync` (reload everything). Nothing else is sent: the
//! page reads the data through the usual routes.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_core::Stream;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::{AppState, scope};

/// A document that changed, as streams are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeNote {
    pub doc_id: String,
    /// `visit` or `hazard`.
    pub kind: &'static str,
    pub enterprise_id: String,
    pub agency_id: String,
    pub township_id: String,
}

/// The broadcast of changes to open streams.
#[derive(Debug)]
pub struct Changes {
    tx: broadcast::Sender<ChangeNote>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Changes {
    /// Tells every open stream that the document of `header` changed (nobody listening is fine).
    pub fn announce(&self, header: &sync_core::doc::Header) {
        let kind = match header.kind {
            sync_core::doc::DocKind::Visit => "visit",
            sync_core::doc::DocKind::Hazard => "hazard",
        };
        let _ = self.tx.send(ChangeNote {
            doc_id: header.id.to_string(),
            kind,
            enterprise_id: header.enterprise.to_string(),
            agency_id: header.agency.to_string(),
            township_id: header.township.to_string(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNote> {
        self.tx.subscribe()
    }
}

/// `GET /api/v1/events/stream`.
pub async fn stream(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let enterprises: BTreeSet<String> = scope.enterprise_ids().clone();
    let own = scope::own_agency(&user).map(str::to_owned);
    let rx = state.changes.subscribe();
    let until =
        tokio::time::Instant::now() + state.config.access_token_ttl.max(Duration::from_secs(60));
    let stream = futures_util::stream::unfold(
        (rx, enterprises, own, until),
        |(mut rx, enterprises, own, until)| async move {
            loop {
                let next = tokio::time::timeout_at(until, rx.recv()).await;
                let event = match next {
                    Err(_elapsed) => return None,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                        Event::default().event("resync").data("{}")
                    }
                    Ok(Ok(note)) => {
                        if !enterprises.contains(&note.enterprise_id)
                            || own.as_deref().is_some_and(|a| a != note.agency_id)
                        {
                            continue;
                        }
                        let data = serde_json::to_string(&note).unwrap_or_default();
                        Event::default().event("change").data(data)
                    }
                };
                return Some((Ok(event), (rx, enterprises, own, until)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
