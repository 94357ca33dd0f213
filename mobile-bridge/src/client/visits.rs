//! Visits: starting one, its details and checklist, and the enterprise head's signature.
//! Part of [`InspectionClient`]'s exported API (UniFFI takes several `impl` blocks of one object).

use super::*;

#[uniffi::export]
impl InspectionClient {
    /// Starts a visit to an enterprise (inspectors). Returns the visit id.
    pub fn start_visit(
        &self,
        enterprise_id: String,
        visit_kind: VisitKindRecord,
        place: String,
    ) -> Result<String, BridgeError> {
        let author = self.inner.author()?;
        if author.role != Role::Inspector {
            return Err(BridgeError::Refused {
                reason: "只有检查员可以开始检查 / only inspectors start visits".into(),
            });
        }
        let enterprise = self
            .inner
            .store
            .enterprises()?
            .into_iter()
            .find(|e| e.id == enterprise_id)
            .ok_or_else(|| BridgeError::not_found(format!("enterprise {enterprise_id}")))?;
        let now = now_ms();
        let header = Header {
            kind: DocKind::Visit,
            id: uuid::Uuid::new_v4(),
            schema: sync_core::doc::SCHEMA_VERSION,
            enterprise: EnterpriseId::parse(&enterprise.id)?,
            agency: AgencyId::from_uuid(author.org),
            township: TownshipId::parse(&enterprise.township_id)?,
            created_by: author.user,
            created_at: now,
        };
        let mut visit = VisitDoc::new(&header, visit_kind.into(), now);
        visit.place = place;
        let edited = edit::new_visit(&visit, &author, now)?;
        self.inner
            .commit(header.id, DocKind::Visit, header.enterprise, edited)?;
        Ok(header.id.to_string())
    }

    /// Changes a visit's details.
    pub fn edit_visit(&self, visit_id: String, patch: VisitPatch) -> Result<(), BridgeError> {
        let gps = patch.gps.map(TryInto::try_into).transpose()?;
        self.inner.edit_visit(&visit_id, move |v| {
            if let Some(p) = patch.place {
                v.place = p;
            }
            if let Some(n) = patch.notes {
                v.notes = TextField(n);
            }
            if let Some(a) = patch.overall_assessment {
                v.overall_assessment = TextField(a);
            }
            if gps.is_some() {
                v.gps = gps;
            }
            if let Some(e) = patch.ended_at {
                v.ended_at = Some(e);
            }
            for i in patch.add_inspectors {
                if !v.inspectors.contains(&i) {
                    v.inspectors.push(i);
                }
            }
        })
    }

    /// Adds or updates a checklist line (an empty `id` adds one). Returns the line's id.
    pub fn set_checklist_item(
        &self,
        visit_id: String,
        item: ChecklistItemRecord,
    ) -> Result<String, BridgeError> {
        check_text("title", &item.title, 500)?;
        let id = if item.id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            parse_uuid("id", &item.id)?.to_string()
        };
        let line = ChecklistItem {
            id: id.clone(),
            title: item.title,
            result: item.result.into(),
            note: item.note,
        };
        self.inner.edit_visit(&visit_id, move |v| {
            match v.checklist.iter_mut().find(|c| c.id == line.id) {
                Some(existing) => *existing = line,
                None => v.checklist.push(line),
            }
        })?;
        Ok(id)
    }

    /// The enterprise head signs the hazard list: the signature image is taken like a photo.
    pub fn sign_visit(
        &self,
        visit_id: String,
        signer_name: String,
        image_path: String,
    ) -> Result<(), BridgeError> {
        check_text(
            "signer_name",
            &signer_name,
            sync_core::limits::max_chars("signer"),
        )?;
        let author = self.inner.author()?;
        let (uid, vdoc) = self.inner.load(&visit_id)?;
        let header = sync_core::doc::read_header(&vdoc).map_err(BridgeError::storage)?;
        // The signature names every hazard of the visit this phone holds, with its content now.
        let hazards = self.inner.hazards_of_visit(&visit_id)?;
        let photo = self.inner.ingest_photo(&visit_id, &image_path)?;
        let edited = edit::sign_hazard_list(
            &vdoc,
            &hazards,
            &author,
            uuid::Uuid::new_v4(),
            &signer_name,
            photo,
            now_ms(),
        )?;
        self.inner
            .commit(uid, DocKind::Visit, header.enterprise, edited)
    }
}
