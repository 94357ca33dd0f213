//! Lists and reads: the inbox, enterprises, hazards, visits, the actions a user may take, and the
//! resolution of a field two people set offline.
//! Part of [`InspectionClient`]'s exported API (UniFFI takes several `impl` blocks of one object).

use super::*;

#[uniffi::export]
impl InspectionClient {
    /// The user's inbox from the server (online only): what happened to the hazards in scope
    /// and the reminders, newest first, at most `limit` (1 to 500); with `since_ms` only what
    /// the server noted after it.
    pub fn fetch_inbox(
        &self,
        since_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<InboxItemRecord>, BridgeError> {
        if since_ms.is_some_and(|s| s < 0) {
            return Err(BridgeError::invalid(
                "since_ms",
                "时间不能为负 / since_ms must not be negative",
            ));
        }
        if !(1..=500).contains(&limit) {
            return Err(BridgeError::invalid(
                "limit",
                "条数须为 1 至 500 / limit must be 1 to 500",
            ));
        }
        self.inner.block_on(self.inner.fetch_inbox(since_ms, limit))
    }

    /// The enterprises the user may see: fetched when online, the cached list when offline.
    pub fn list_enterprises(&self) -> Result<Vec<EnterpriseRecord>, BridgeError> {
        match self.inner.block_on(self.inner.fetch_enterprises()) {
            Ok(()) | Err(BridgeError::Network { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(self
            .inner
            .store
            .enterprises()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Hazards on this phone that are not closed (from every visit, earlier ones included),
    /// optionally of one enterprise, by deadline.
    pub fn open_hazards(
        &self,
        enterprise_id: Option<String>,
    ) -> Result<Vec<HazardSummary>, BridgeError> {
        self.hazards(enterprise_id, false)
    }

    /// Every hazard on this phone, closed ones included.
    pub fn all_hazards(
        &self,
        enterprise_id: Option<String>,
    ) -> Result<Vec<HazardSummary>, BridgeError> {
        self.hazards(enterprise_id, true)
    }

    /// Ids of the visits on this phone.
    pub fn list_visits(
        &self,
        enterprise_id: Option<String>,
    ) -> Result<Vec<VisitSummary>, BridgeError> {
        let store = &self.inner.store;
        let mut hazards: HashMap<String, u32> = HashMap::new();
        for h in store.summaries(Some(DocKind::Hazard), enterprise_id.as_deref())? {
            if let Some(v) = h.visit_id {
                *hazards.entry(v).or_default() += 1;
            }
        }
        Ok(store
            .summaries(Some(DocKind::Visit), enterprise_id.as_deref())?
            .into_iter()
            .map(|s| VisitSummary {
                hazards: hazards.get(&s.id).copied().unwrap_or(0),
                ended: s.state.as_deref() == Some("ended"),
                place: s.title.unwrap_or_default(),
                enterprise_id: s.enterprise,
                item_state: if s.refused {
                    ItemState::Refused {
                        reason: "服务器拒收，请查看详情 / refused by the server: see the visit"
                            .into(),
                    }
                } else if s.dirty {
                    ItemState::Pending
                } else {
                    ItemState::Synced
                },
                id: s.id,
            })
            .collect())
    }

    /// A visit.
    pub fn get_visit(&self, visit_id: String) -> Result<VisitRecord, BridgeError> {
        let doc = self
            .inner
            .load_kind(&visit_id, DocKind::Visit, "visit_id")?;
        let v = VisitDoc::hydrate_from(&doc).map_err(BridgeError::storage)?;
        Ok((&v).into())
    }

    /// Every action on a hazard with whether the signed-in user may take it now, and the rule
    /// that stops it when not: what the app offers (the server gives the same answer).
    pub fn allowed_actions(&self, hazard_id: String) -> Result<Vec<ActionRecord>, BridgeError> {
        let author = self.inner.author()?;
        let (_, doc) = self.inner.load(&hazard_id)?;
        let h = HazardDoc::hydrate_from(&doc).map_err(BridgeError::storage)?;
        // A hazard on this phone is in the user's scope, unless it is kept only for unsent
        // edits after leaving it.
        let in_scope = !self
            .inner
            .store
            .is_out_of_scope(parse_uuid("hazard_id", &hazard_id)?)?;
        Ok(sync_core::actions::allowed_actions(&author, &h, in_scope)
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Inspector: picks the value of a field that two people set at once (one of
    /// `HazardRecord::conflicts`' values, or a new one).
    pub fn resolve_conflict(
        &self,
        hazard_id: String,
        field: String,
        value: String,
    ) -> Result<(), BridgeError> {
        check_text("field", &field, 64)?;
        if value.chars().count() > sync_core::limits::max_chars(&field) {
            return Err(BridgeError::invalid(
                "value",
                format!(
                    "取值过长（最多 {} 个字） / the value is too long",
                    sync_core::limits::max_chars(&field)
                ),
            ));
        }
        let author = self.inner.author()?;
        let (uid, doc) = self.inner.load(&hazard_id)?;
        let header = sync_core::doc::read_header(&doc).map_err(BridgeError::storage)?;
        if !edit::conflicts(&doc).iter().any(|c| c.field == field) {
            return Err(BridgeError::invalid(
                "field",
                "该字段只有一个值，无需选择 / the field holds a single value: nothing to resolve",
            ));
        }
        let edited = edit::resolve_conflict(&doc, &author, now_ms(), &field, &value).map_err(
            |e| match e {
                // The value does not fit the field (funds that are not a number, ...).
                edit::EditError::Write(w) => BridgeError::invalid("value", w),
                edit::EditError::Doc(d) => BridgeError::invalid("value", d.to_string()),
                other => other.into(),
            },
        )?;
        self.inner
            .commit(uid, DocKind::Hazard, header.enterprise, edited)
    }

    /// A hazard with its state and history.
    pub fn get_hazard(&self, hazard_id: String) -> Result<HazardRecord, BridgeError> {
        let doc = self
            .inner
            .load_kind(&hazard_id, DocKind::Hazard, "hazard_id")?;
        let h = HazardDoc::hydrate_from(&doc).map_err(BridgeError::storage)?;
        let mut rec: HazardRecord = (&h).into();
        rec.overdue = is_overdue(
            rec.state,
            rec.current_deadline.as_deref(),
            &today_in_china(),
        );
        rec.conflicts = edit::conflicts(&doc).into_iter().map(Into::into).collect();
        for p in rec
            .photos
            .iter_mut()
            .chain(rec.events.iter_mut().flat_map(|e| e.photos.iter_mut()))
        {
            p.local_path = self.inner.local_photo(&p.sha256);
        }
        Ok(rec)
    }
}
