//! The events of a hazard's rectification, one call per event a role may record.
//! Part of [`InspectionClient`]'s exported API (UniFFI takes several `impl` blocks of one object).

use super::*;

#[uniffi::export]
impl InspectionClient {
    /// Inspector: issues the rectification notice.
    pub fn notify(&self, hazard_id: String) -> Result<(), BridgeError> {
        self.inner.record(&hazard_id, EventKind::Notified)
    }

    /// Enterprise: signs for the notice.
    pub fn sign_for(&self, hazard_id: String, signer: String) -> Result<(), BridgeError> {
        check_text("signer", &signer, sync_core::limits::max_chars("signer"))?;
        self.inner
            .record(&hazard_id, EventKind::SignedFor { signer })
    }

    /// Enterprise: asks for more time.
    pub fn request_extension(
        &self,
        hazard_id: String,
        until: String,
        reason: String,
    ) -> Result<(), BridgeError> {
        let until = Deadline::parse(&until)?.to_string();
        check_text("reason", &reason, 1000)?;
        self.inner
            .record(&hazard_id, EventKind::ExtensionRequested { until, reason })
    }

    /// Inspector: grants a pending extension request.
    pub fn grant_extension(
        &self,
        hazard_id: String,
        request_event_id: String,
        until: String,
    ) -> Result<(), BridgeError> {
        let until = Deadline::parse(&until)?.to_string();
        self.inner.record(
            &hazard_id,
            EventKind::ExtensionGranted {
                request: request_event_id,
                until,
            },
        )
    }

    /// Enterprise: submits the rectification with evidence photos (file paths).
    pub fn submit_rectification(
        &self,
        hazard_id: String,
        note: String,
        photo_paths: Vec<String>,
    ) -> Result<(), BridgeError> {
        check_text("note", &note, 4000)?;
        let mut photos = Vec::new();
        for p in &photo_paths {
            photos.push(self.inner.ingest_photo(&hazard_id, p)?);
        }
        self.inner.record(
            &hazard_id,
            EventKind::RectificationSubmitted { note, photos },
        )
    }

    /// Inspector: re-inspection result (复查): accepted, or rejected and back in progress.
    pub fn verify(
        &self,
        hazard_id: String,
        accepted: bool,
        note: String,
    ) -> Result<(), BridgeError> {
        self.inner
            .record(&hazard_id, EventKind::Verified { accepted, note })
    }

    /// Closes the hazard (销号): the inspector for a general hazard, the regulator for a major one.
    pub fn close(&self, hazard_id: String, note: String) -> Result<(), BridgeError> {
        self.inner.record(&hazard_id, EventKind::Closed { note })
    }

    /// Changes the grade stated by the notice, with the reason (a notice's grade changes only
    /// this way): the agency or the township may raise it; only the township, or a supervisor
    /// above, may lower a major hazard.
    pub fn regrade(
        &self,
        hazard_id: String,
        grade: GradeRecord,
        reason: String,
    ) -> Result<(), BridgeError> {
        check_reason("reason", &reason)?;
        self.inner.record(
            &hazard_id,
            EventKind::Regraded {
                grade: grade.into(),
                reason,
            },
        )
    }

    /// Refuses a pending extension request, with the reason: the agency for a general hazard,
    /// the township for a major one. The deadline stays.
    pub fn refuse_extension(
        &self,
        hazard_id: String,
        request_event_id: String,
        reason: String,
    ) -> Result<(), BridgeError> {
        check_reason("reason", &reason)?;
        check_text("request_event_id", &request_event_id, 64)?;
        self.inner.record(
            &hazard_id,
            EventKind::ExtensionRefused {
                request: request_event_id,
                reason,
            },
        )
    }

    /// Agency: records that a major hazard was reported to the regulator, and to whom (the
    /// township is also told on its own when the server first sees the hazard as major).
    pub fn report_to_regulator(&self, hazard_id: String, to: String) -> Result<(), BridgeError> {
        check_reason("to", &to)?;
        self.inner
            .record(&hazard_id, EventKind::ReportedToRegulator { to })
    }

    /// Township: puts the hazard under its supervision (挂牌督办).
    pub fn put_under_supervision(
        &self,
        hazard_id: String,
        note: String,
    ) -> Result<(), BridgeError> {
        check_text("note", &note, sync_core::limits::max_chars("note"))?;
        self.inner
            .record(&hazard_id, EventKind::SupervisionPut { note })
    }

    /// Township: lifts its supervision.
    pub fn lift_supervision(&self, hazard_id: String, note: String) -> Result<(), BridgeError> {
        check_text("note", &note, sync_core::limits::max_chars("note"))?;
        self.inner
            .record(&hazard_id, EventKind::SupervisionLifted { note })
    }

    /// Reopens an accepted or closed hazard, with the reason (found again on a later visit, or
    /// the acceptance was wrong): the rectification starts over.
    pub fn reopen(&self, hazard_id: String, reason: String) -> Result<(), BridgeError> {
        check_reason("reason", &reason)?;
        self.inner
            .record(&hazard_id, EventKind::Reopened { reason })
    }
}
