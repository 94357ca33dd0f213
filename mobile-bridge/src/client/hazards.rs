//! Hazards: recording one, editing its details, and attaching photos.
//! Part of [`InspectionClient`]'s exported API (UniFFI takes several `impl` blocks of one object).

use super::*;

#[uniffi::export]
impl InspectionClient {
    /// Records a hazard found on a visit. Returns the hazard id.
    pub fn add_hazard(&self, visit_id: String, input: HazardInput) -> Result<String, BridgeError> {
        let author = self.inner.author()?;
        let (_, vdoc) = self.inner.load(&visit_id)?;
        let visit = VisitDoc::hydrate_from(&vdoc).map_err(BridgeError::storage)?;
        let vh = visit.header().map_err(BridgeError::storage)?;
        let grade: Grade = input.grade.into();
        let deadline = Deadline::parse(&input.deadline)?;
        check_text("location", &input.location, 200)?;
        check_text("description", &input.description, 4000)?;
        let category = parse_category(&input.category)?;
        let now = now_ms();
        let header = Header {
            kind: DocKind::Hazard,
            id: uuid::Uuid::new_v4(),
            created_by: author.user,
            created_at: now,
            ..vh
        };
        let mut h = HazardDoc::new(&header, VisitId::parse(&visit.id)?, grade, deadline);
        h.location = input.location;
        h.description = TextField(input.description);
        h.category = category.to_owned();
        h.criterion = input.criterion;
        h.measure = TextField(input.measure);
        h.responsible_person = input.responsible_person;
        h.funds_yuan = input.funds_yuan;
        h.emergency_plan = input.emergency_plan;
        let edited = edit::new_hazard(&h, &author, now)?;
        self.inner
            .commit(header.id, DocKind::Hazard, header.enterprise, edited)?;
        Ok(header.id.to_string())
    }

    /// Changes a hazard's details (every field optional).
    pub fn edit_hazard(&self, hazard_id: String, patch: HazardPatch) -> Result<(), BridgeError> {
        let grade: Option<Grade> = patch.grade.map(Into::into);
        let deadline = patch.deadline.as_deref().map(Deadline::parse).transpose()?;
        let category = patch.category.as_deref().map(parse_category).transpose()?;
        if let Some(l) = &patch.location {
            check_text("location", l, 200)?;
        }
        self.inner.edit_hazard(&hazard_id, move |h| {
            if let Some(v) = patch.location {
                h.location = v;
            }
            if let Some(v) = patch.description {
                h.description = TextField(v);
            }
            if let Some(v) = category {
                h.category = v.to_owned();
            }
            if let Some(v) = grade {
                h.grade = v;
            }
            if let Some(v) = patch.criterion {
                h.criterion = v;
            }
            if let Some(v) = patch.measure {
                h.measure = TextField(v);
            }
            if let Some(v) = deadline {
                h.deadline = v.to_string();
            }
            if let Some(v) = patch.responsible_person {
                h.responsible_person = v;
            }
            if patch.funds_yuan.is_some() {
                h.funds_yuan = patch.funds_yuan;
            }
            if let Some(v) = patch.emergency_plan {
                h.emergency_plan = v;
            }
        })
    }

    /// Adds a photo of the hazard as found: prepared (EXIF time and GPS read, downscaled,
    /// re-encoded), stored under `data_dir/photos/`, queued for upload.
    pub fn attach_photo(
        &self,
        hazard_id: String,
        path: String,
    ) -> Result<PhotoRecord, BridgeError> {
        let photo = self.inner.ingest_photo(&hazard_id, &path)?;
        let rec = PhotoRecord {
            local_path: self.inner.local_photo(&photo.sha256),
            ..(&photo).into()
        };
        self.inner.edit_hazard(&hazard_id, move |h| {
            if !h.photos.iter().any(|p| p.sha256 == photo.sha256) {
                h.photos.push(photo);
            }
        })?;
        Ok(rec)
    }
}
