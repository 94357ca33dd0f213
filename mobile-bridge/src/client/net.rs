//! The client's network side: login and device enrolment, the sync round trip and applying
//! its answer in one local transaction, photo uploads, repairing a refused document. Split
//! from `client.rs`, which holds the API an app calls and the local edits.

use super::*;

/// Rounds of one sync that only fetch further updates (`more`) before it stops; the next sync
/// goes on from the cursor.
const MAX_PULLS: usize = 20;
/// The overall deadline of one sync request: far beyond any batch; stalls end by the read
/// timeout instead.
const SYNC_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

impl Inner {
    pub(super) async fn login(
        &self,
        username: String,
        password: String,
        device_name: String,
        platform: String,
    ) -> Result<UserRecord, BridgeError> {
        let _g = self.sync_lock.lock().await;
        let web = self
            .post_json(
                "/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await?;
        let web_token = web["access_token"].as_str().unwrap_or_default().to_owned();
        let user_id = web["user"]["id"].as_str().unwrap_or_default().to_owned();
        if user_id.is_empty() || web_token.is_empty() {
            return Err(BridgeError::network(
                "登录应答缺少用户或令牌 / login answered without a user or token",
            ));
        }
        let previous = self.store.session()?;
        let same_user = previous
            .as_ref()
            .is_some_and(|s| s.user_id == user_id && s.server_url == self.server);
        if previous.is_some() && !same_user {
            // The phone never mixes two users' work: another user's unsent work must reach the
            // server (that user logs in and syncs) or be discarded on purpose first.
            let (docs, photos) = self.store.unsynced_work()?;
            if docs > 0 || photos > 0 {
                return Err(BridgeError::Refused {
                    reason: format!(
                        "此设备上还有上一位用户未同步的 {docs} 份记录和 {photos} 张照片：请该用户登录并同步，或确认放弃后再登录 \
                         / this phone holds {docs} documents and {photos} photos of the previous user that have not \
                         reached the server: that user logs in and syncs, or they are discarded first"
                    ),
                });
            }
            for path in self.store.wipe()? {
                let _ = std::fs::remove_file(path);
            }
        }
        let enrol = async |this: &Self| -> Result<(String, String), BridgeError> {
            let dev = this
                .post_json(
                    "/devices",
                    Some(&web_token),
                    &json!({"name": device_name, "platform": platform}),
                )
                .await?;
            let device = dev["device_id"].as_str().unwrap_or_default().to_owned();
            let actor = dev["actor_id"].as_str().unwrap_or_default().to_owned();
            if device.is_empty() || actor.is_empty() {
                return Err(BridgeError::network(
                    "登记设备的应答不完整 / device enrolment answered without an id",
                ));
            }
            Ok((device, actor))
        };
        // Re-use this phone's enrolment when the same user logs in again on the same server.
        let (mut device_id, mut actor_id) = match previous.as_ref().filter(|_| same_user) {
            Some(s) => (s.device_id.clone(), s.actor_id.clone()),
            None => enrol(self).await?,
        };
        let mut replaced: Option<String> = None;
        let phone = match self
            .post_json_coded(
                "/auth/login",
                None,
                &json!({"username": username, "password": password, "device_id": device_id}),
            )
            .await
        {
            Ok(v) => v,
            // The agency revoked this phone (or the server lost it): enrol it again as a new
            // device; its unsent work is re-recorded under the new device below.
            Err((Some(code), _))
                if same_user && matches!(code.as_str(), "device_revoked" | "unknown_device") =>
            {
                replaced = Some(device_id);
                (device_id, actor_id) = enrol(self).await?;
                self.post_json(
                    "/auth/login",
                    None,
                    &json!({"username": username, "password": password, "device_id": device_id}),
                )
                .await?
            }
            Err((_, e)) => return Err(e),
        };
        // The web session was only needed to enrol.
        let _ = self
            .http()
            .post(self.url("/auth/logout"))
            .bearer_auth(&web_token)
            .send()
            .await;
        let u = &phone["user"];
        if Role::parse(u["role"].as_str().unwrap_or_default()).is_err() {
            return Err(BridgeError::network(format!(
                "登录应答的角色无法识别 / login answered an unknown role: {}",
                u["role"]
            )));
        }
        let row = SessionRow {
            server_url: self.server.clone(),
            username: u["username"].as_str().unwrap_or(&username).to_owned(),
            user_id: u["id"].as_str().unwrap_or_default().to_owned(),
            role: u["role"].as_str().unwrap_or_default().to_owned(),
            org_id: u["org_id"].as_str().unwrap_or_default().to_owned(),
            display_name: u["display_name"].as_str().unwrap_or_default().to_owned(),
            device_id,
            actor_id,
            access_token: phone["access_token"].as_str().map(str::to_owned),
            access_expires_at: phone["access_expires_at"].as_str().map(str::to_owned),
            refresh_token: phone["refresh_token"].as_str().map(str::to_owned),
        };
        self.store.put_session(&row)?;
        self.store.set_device_revoked(false)?;
        if let Some(old) = replaced {
            self.rerecord_pending(&old)?;
        }
        drop(_g);
        let _ = self.fetch_enterprises().await;
        user_record(&row)
    }

    pub(super) async fn logout(&self) -> Result<(), BridgeError> {
        let _g = self.sync_lock.lock().await;
        if let Some(s) = self.store.session()?
            && let Some(t) = &s.access_token
        {
            let _ = self
                .http()
                .post(self.url("/auth/logout"))
                .bearer_auth(t)
                .send()
                .await;
        }
        self.store.put_tokens(None, None, None)?;
        self.store.set_signed_out(true)?;
        Ok(())
    }

    /// After the phone was enrolled again as a new device: every document with edits the old
    /// device never sent is re-recorded under the new one, checked as the server will check it
    /// ([`sync_core::edit::rerecord`]). A document the rules no longer let this user change is
    /// marked refused with the reason, for the user to see and repair; nothing is dropped.
    fn rerecord_pending(&self, old_device: &str) -> Result<(), BridgeError> {
        let author = self.author()?;
        let at = now_ms();
        self.store.write(|tx| {
            for (id, _) in store::pending_ids_in(tx)? {
                let (Some(state), Some(doc)) = (store::doc_state(tx, id)?, store::load_doc(tx, id)?)
                else {
                    continue;
                };
                match sync_core::edit::rerecord(&doc, &state.synced, &author, old_device, at) {
                    Ok(edited) => store::rerecord_doc(tx, id, &edited.doc, state.synced)?,
                    Err(e) => store::set_refused(
                        tx,
                        id,
                        Some(&[format!(
                            "换用新设备后无法重新记录 / could not be re-recorded on the new device: {e}"
                        )]),
                    )?,
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, BridgeError> {
        self.post_json_coded(path, token, body)
            .await
            .map_err(|(_, e)| e)
    }

    /// [`Self::post_json`], keeping the server's error code (`device_revoked`, …) beside the
    /// error when the server gave one.
    async fn post_json_coded(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, (Option<String>, BridgeError)> {
        let mut req = self.http().post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(|e| (None, e.into()))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| (None, e.into()))?;
        if !status.is_success() {
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            return Err((code, http_error(status, &text)));
        }
        serde_json::from_str(&text).map_err(|e| (None, BridgeError::network(e)))
    }

    /// A valid access token, refreshing it first when it has expired. Callers hold `sync_lock`
    /// (a refresh token works once: two refreshes at a time would end the session).
    async fn token(&self, force_refresh: bool) -> Result<String, BridgeError> {
        let s = self
            .store
            .session()?
            .ok_or_else(|| BridgeError::Unauthorized {
                detail: "未登录 / not logged in".into(),
            })?;
        let expired = s
            .access_expires_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_none_or(|t| t.as_millisecond() - 30_000 < now_ms());
        if let Some(t) = &s.access_token
            && !expired
            && !force_refresh
        {
            return Ok(t.clone());
        }
        let Some(refresh) = s.refresh_token else {
            if self.store.device_revoked()? {
                return Err(BridgeError::DeviceRevoked {
                    detail: "此设备已被停用 / this device has been revoked".into(),
                });
            }
            return Err(BridgeError::Unauthorized {
                detail: "会话已结束 / session ended".into(),
            });
        };
        let r = self
            .http()
            .post(self.url("/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        if status.as_u16() == 401 || status.as_u16() == 400 {
            self.store.put_tokens(None, None, None)?;
            let e = http_error(reqwest::StatusCode::UNAUTHORIZED, &text);
            if matches!(e, BridgeError::DeviceRevoked { .. }) {
                self.store.set_device_revoked(true)?;
            }
            return Err(e);
        }
        if !status.is_success() {
            return Err(http_error(status, &text));
        }
        let v: Value = serde_json::from_str(&text).map_err(BridgeError::network)?;
        let access = v["access_token"].as_str().map(str::to_owned);
        self.store.put_tokens(
            access.as_deref(),
            v["access_expires_at"].as_str(),
            v["refresh_token"].as_str(),
        )?;
        access.ok_or_else(|| BridgeError::network("refresh answered without a token"))
    }

    async fn get_authed(&self, path: &str) -> Result<reqwest::Response, BridgeError> {
        let token = self.token(false).await?;
        let r = self
            .http()
            .get(self.url(path))
            .bearer_auth(&token)
            .send()
            .await?;
        if r.status().as_u16() == 401 {
            let token = self.token(true).await?;
            return Ok(self
                .http()
                .get(self.url(path))
                .bearer_auth(&token)
                .send()
                .await?);
        }
        Ok(r)
    }

    pub(super) async fn fetch_inbox(
        &self,
        since_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::records::InboxItemRecord>, BridgeError> {
        #[derive(serde::Deserialize)]
        struct Item {
            hazard_id: String,
            event_id: String,
            kind: String,
            label: String,
            description: String,
            enterprise_name: String,
            at: i64,
            created_at: i64,
        }
        let mut path = format!("/inbox?limit={limit}");
        if let Some(since) = since_ms {
            path.push_str(&format!("&since={since}"));
        }
        let r = self.get_authed(&path).await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            return Err(http_error(status, &text));
        }
        let items: Vec<Item> = serde_json::from_str(&text).map_err(BridgeError::network)?;
        Ok(items
            .into_iter()
            .map(|i| crate::records::InboxItemRecord {
                hazard_id: i.hazard_id,
                event_id: i.event_id,
                kind: i.kind,
                label: i.label,
                description: i.description,
                enterprise_name: i.enterprise_name,
                at_ms: i.at,
                received_at_ms: i.created_at,
            })
            .collect())
    }

    pub(super) async fn fetch_enterprises(&self) -> Result<(), BridgeError> {
        let _g = self.sync_lock.lock().await;
        let r = self.get_authed("/enterprises").await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            return Err(http_error(status, &text));
        }
        let list: Vec<EnterpriseRow> = serde_json::from_str(&text).map_err(BridgeError::network)?;
        self.store.put_enterprises(&list)?;
        // Colleagues, for adding inspectors to a visit; a server without the route keeps the
        // cached list as it is.
        if let Ok(r) = self.get_authed("/colleagues").await
            && r.status().is_success()
            && let Ok(rows) = r.json::<Vec<store::ColleagueRow>>().await
        {
            self.store.put_colleagues(&rows)?;
        }
        Ok(())
    }

    pub(super) async fn sync(self: &Arc<Self>) -> Result<SyncReport, BridgeError> {
        let guard = self.sync_lock.lock().await;
        let mut report = SyncReport {
            sent: 0,
            received: 0,
            refused: vec![],
            removed: 0,
            photos_uploaded: 0,
            photos_pending: 0,
            photo_error: None,
            requests: 0,
            bytes_up: 0,
            bytes_down: 0,
        };
        let mut changed: Vec<String> = Vec::new();
        // The backlog as it stands now, visits first; edits made while this runs go next time.
        let mut queue = self.store.pending_ids()?.into_iter().peekable();
        // Rounds that only ask for more updates (`more`), bounded.
        let mut pulls = 0;
        loop {
            let budget = self.link.budget();
            let max_docs = self.link.max_docs();
            let mut batch: Vec<store::PendingDoc> = Vec::new();
            let mut bytes = 0;
            while let Some(&(id, _)) = queue.peek() {
                if batch.len() >= max_docs {
                    break;
                }
                let Some(p) = self.store.pending_doc(id)? else {
                    queue.next();
                    continue;
                };
                if p.changes.is_empty() {
                    queue.next();
                    continue;
                }
                let size = p.changes.iter().map(|c| c.len() + 4).sum::<usize>() + 24;
                if !batch.is_empty() && bytes + size > budget {
                    break;
                }
                bytes += size;
                batch.push(p);
                queue.next();
            }
            if batch.is_empty() {
                pulls += 1;
            }
            let resp = self.round_trip(&mut batch, &mut report).await?;
            let outcome = self.apply(&batch, &resp)?;
            report.sent += u32::try_from(batch.len()).unwrap_or(u32::MAX);
            report.received += u32::try_from(outcome.updated.len()).unwrap_or(u32::MAX);
            report.removed += u32::try_from(outcome.removed).unwrap_or(u32::MAX);
            for r in &resp.refused {
                report.refused.push(RefusedItem {
                    doc_id: r.id.to_string(),
                    reasons: refusal_texts(r),
                });
            }
            changed.extend(outcome.updated);
            let backlog_left = queue.peek().is_some();
            if !backlog_left && (!resp.more || pulls >= MAX_PULLS) {
                break;
            }
        }
        let (uploaded, error) = self.upload_photos().await;
        report.photos_uploaded = uploaded;
        report.photo_error = error;
        report.photos_pending =
            u32::try_from(self.store.queued_photos()?.len()).unwrap_or(u32::MAX);
        drop(guard);
        changed.sort();
        changed.dedup();
        self.notify(changed);
        Ok(report)
    }

    /// One sync request with `batch` and its decoded answer; refreshes the token once on a 401.
    /// Counts the request and its bytes in `report` and tells the link how long it took.
    async fn round_trip(
        &self,
        batch: &mut [store::PendingDoc],
        report: &mut SyncReport,
    ) -> Result<SyncResponse, BridgeError> {
        let req = protocol::SyncRequest {
            cursor: self.store.read(store::cursor)?,
            docs: batch
                .iter_mut()
                .map(store::PendingDoc::take_for_request)
                .collect(),
        };
        let body = protocol::encode_request(&req);
        let mut token = self.token(false).await?;
        let mut refreshed = false;
        loop {
            let started = std::time::Instant::now();
            let r = self
                .http()
                .post(self.url("/sync"))
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, protocol::MEDIA_TYPE)
                // No overall deadline: the client's read timeout ends a stalled request, and
                // an answer that keeps arriving is read to the end however long it takes.
                .timeout(SYNC_DEADLINE)
                .body(body.clone())
                .send()
                .await?;
            let status = r.status();
            if status.as_u16() == 401 && !refreshed {
                refreshed = true;
                token = self.token(true).await?;
                continue;
            }
            let answer = r.bytes().await?;
            report.requests += 1;
            report.bytes_up += body.len() as u64;
            report.bytes_down += answer.len() as u64;
            self.link
                .record(body.len() + answer.len(), started.elapsed());
            if !status.is_success() {
                return Err(http_error(status, &String::from_utf8_lossy(&answer)));
            }
            return protocol::decode_response(&answer).map_err(BridgeError::network);
        }
    }

    /// Applies a response in one transaction: acknowledgements, refusals, updates, removals
    /// and the cursor become durable together.
    fn apply(
        &self,
        sent: &[store::PendingDoc],
        resp: &SyncResponse,
    ) -> Result<ApplyOutcome, BridgeError> {
        let mut out = ApplyOutcome::default();
        // Nothing sent and nothing new: no write (an idle sync costs no disk flush).
        if sent.is_empty()
            && resp.refused.is_empty()
            && resp.updates.is_empty()
            && resp.removed.is_empty()
            && self.store.read(store::cursor)? == resp.cursor
            && !self.store.read(store::any_to_sweep)?
        {
            return Ok(out);
        }
        self.store.write(|tx| {
            let refused: HashMap<uuid::Uuid, &protocol::DocRefusal> =
                resp.refused.iter().map(|r| (r.id, r)).collect();
            // Every document sent had changes (the batch takes only those); they were moved
            // into the request, so only the heads and edit generation are here.
            for p in sent {
                let Some(state) = store::doc_state(tx, p.id)? else {
                    continue;
                };
                if let Some(r) = refused.get(&p.id) {
                    store::set_refused(tx, p.id, Some(&refusal_texts(r)))?;
                } else {
                    let Some(doc) = store::load_doc(tx, p.id)? else {
                        continue;
                    };
                    let mut synced = state.synced;
                    synced.extend(p.heads.iter().copied());
                    store::set_synced(tx, p.id, &doc, synced)?;
                    store::set_refused(tx, p.id, None)?;
                    tx.execute(
                        "UPDATE docs SET dirty = 0 WHERE id = ?1 AND edit_gen = ?2",
                        rusqlite::params![p.id.to_string(), p.edit_gen],
                    )
                    .map_err(|e| sync_core::store::StoreError::Backend(e.to_string()))?;
                }
            }
            for u in &resp.updates {
                let before = store::load_doc(tx, u.id)?;
                let mut doc = before.clone().unwrap_or_default();
                let before_heads = doc.get_heads();
                let received: Vec<ChangeHash> = match &u.payload {
                    Payload::Changes(raw) => {
                        let mut changes = Vec::with_capacity(raw.len());
                        for r in raw {
                            changes.push(Change::from_bytes(r.clone()).map_err(|e| {
                                sync_core::store::StoreError::Corrupt(e.to_string())
                            })?);
                        }
                        let hashes = changes.iter().map(Change::hash).collect();
                        doc.apply_changes(changes)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?;
                        hashes
                    }
                    Payload::Whole(bytes) => {
                        let mut whole = sync_core::doc::load(bytes)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?;
                        let heads = whole.get_heads();
                        doc.merge(&mut whole)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?;
                        heads
                    }
                };
                let new: Vec<([u8; 32], Vec<u8>)> = doc
                    .get_changes(&before_heads)
                    .into_iter()
                    .map(|c| (c.hash().0, c.raw_bytes().to_vec()))
                    .collect();
                let enterprise = match sync_core::doc::read_header(&doc) {
                    Ok(h) => h.enterprise,
                    // Changes whose dependencies are still missing leave no readable header
                    // yet; keep the enterprise already known.
                    Err(_) => match store::doc_state(tx, u.id)? {
                        Some(s) => EnterpriseId::parse(&s.enterprise)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?,
                        None => continue,
                    },
                };
                store::append(tx, u.id, u.kind, enterprise, &new)?;
                let mut synced = store::doc_state(tx, u.id)?
                    .map(|s| s.synced)
                    .unwrap_or_default();
                synced.extend(received);
                store::set_synced(tx, u.id, &doc, synced)?;
                store::after_write(tx, u.id, &doc)?;
                if !new.is_empty() {
                    out.updated.push(u.id.to_string());
                }
            }
            // A document that left the scope goes, unless it holds unsent edits: those are
            // never lost; the document stays until the server has them (or refused them).
            for id in &resp.removed {
                if store::leave_scope(tx, *id)? {
                    out.removed += 1;
                }
                out.updated.push(id.to_string());
            }
            for id in store::sweep_out_of_scope(tx)? {
                out.removed += 1;
                out.updated.push(id.to_string());
            }
            store::set_cursor(tx, resp.cursor)?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Uploads queued photos, resuming where the server stopped. Returns how many finished and
    /// why the rest did not, if something failed.
    async fn upload_photos(&self) -> (u32, Option<String>) {
        let queued = match self.store.queued_photos() {
            Ok(q) => q,
            Err(e) => return (0, Some(e.to_string())),
        };
        let mut done = 0;
        for p in queued {
            match self.upload_photo(&p).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => return (done, Some(e.to_string())),
            }
        }
        (done, None)
    }

    async fn upload_photo(&self, p: &PhotoRow) -> Result<bool, BridgeError> {
        let bytes = tokio::fs::read(&p.path).await?;
        if photo::sha256_hex(&bytes) != p.sha256 {
            return Err(BridgeError::storage(format!(
                "照片文件已损坏 / prepared photo {} is damaged",
                p.sha256
            )));
        }
        let total = bytes.len() as u64;
        // Ask the server where it stands (it may have more than we recorded before a kill).
        let r = self
            .get_authed(&format!("/photos/{}/status", p.sha256))
            .await?;
        let mut offset = match r.status().as_u16() {
            200 => {
                let v: Value = r.json().await.map_err(BridgeError::network)?;
                if v["complete"].as_bool() == Some(true) {
                    self.store.photo_progress(&p.sha256, total, true)?;
                    return Ok(true);
                }
                v["received"].as_u64().unwrap_or(0)
            }
            404 => 0,
            s => {
                let text = r.text().await.unwrap_or_default();
                return Err(http_error(
                    reqwest::StatusCode::from_u16(s).unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
                    &text,
                ));
            }
        };
        let mut token = self.token(false).await?;
        let mut conflicts = 0;
        while offset < total {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = (start + PHOTO_CHUNK).min(bytes.len());
            let r = self
                .http()
                .put(self.url(&format!("/photos/{}?offset={offset}", p.sha256)))
                .bearer_auth(&token)
                .header("x-photo-size", total.to_string())
                .header(reqwest::header::CONTENT_TYPE, p.media_type.as_str())
                .body(bytes[start..end].to_vec())
                .send()
                .await?;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match status {
                200 | 201 => {
                    offset = v["received"].as_u64().unwrap_or(end as u64);
                    let complete = v["complete"].as_bool() == Some(true);
                    self.store.photo_progress(&p.sha256, offset, complete)?;
                    if complete {
                        return Ok(true);
                    }
                }
                409 if conflicts < 3 => {
                    conflicts += 1;
                    offset = v["expected"].as_u64().unwrap_or(0);
                }
                401 => token = self.token(true).await?,
                404 | 405 => {
                    return Err(BridgeError::network(
                        "服务器尚不支持照片上传 / the server has no photo upload route yet",
                    ));
                }
                _ => {
                    return Err(http_error(
                        reqwest::StatusCode::from_u16(status)
                            .unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
                        &text,
                    ));
                }
            }
        }
        Ok(false)
    }

    pub(super) fn repair(&self, doc_id: &str) -> Result<RepairReport, BridgeError> {
        let (uid, doc) = self.load(doc_id)?;
        let state = self
            .store
            .doc_state(uid)?
            .ok_or_else(|| BridgeError::not_found(format!("document {doc_id}")))?;
        let reasons = state.refused.clone().unwrap_or_default();
        let repaired = if state.synced.is_empty() {
            // The server never accepted anything of it: nothing to keep but the copy.
            Automerge::new()
        } else {
            doc.fork_at(&state.synced).map_err(BridgeError::storage)?
        };
        let discarded = discarded_values(&doc, &repaired);
        self.store.write(|tx| {
            self.store
                .save_refused_version(tx, uid, &doc.save(), &reasons, now_ms())?;
            store::replace_doc(tx, uid, &repaired)
        })?;
        self.notify(vec![doc_id.to_owned()]);
        Ok(RepairReport {
            doc_id: doc_id.to_owned(),
            discarded,
            kept_versions: self.store.refused_versions(uid)?,
        })
    }
}

#[derive(Debug, Default)]
struct ApplyOutcome {
    updated: Vec<String>,
    removed: usize,
}

/// The server's reasons in words a user knows (the rule and the field's name, never a key or
/// an id), each once.
fn refusal_texts(r: &protocol::DocRefusal) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in r.reasons.iter().map(|c| c.message()) {
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

/// The fields whose value differs between the refused version and the repaired one.
fn discarded_values(local: &Automerge, kept: &Automerge) -> Vec<DiscardedValue> {
    fn as_json(doc: &Automerge) -> Value {
        match TypedDoc::hydrate(doc) {
            Ok(TypedDoc::Hazard(h)) => serde_json::to_value(HazardRecord::from(&*h)),
            Ok(TypedDoc::Visit(v)) => serde_json::to_value(VisitRecord::from(&*v)),
            Err(_) => Ok(Value::Null),
        }
        .unwrap_or(Value::Null)
    }
    let (l, k) = (as_json(local), as_json(kept));
    let Value::Object(lm) = l else {
        return vec![];
    };
    let mut out = Vec::new();
    for (field, lv) in lm {
        let kv = k.get(&field).cloned().unwrap_or(Value::Null);
        if kv != lv {
            out.push(DiscardedValue {
                field,
                local_value: lv.to_string(),
                server_value: kv.to_string(),
            });
        }
    }
    out
}
