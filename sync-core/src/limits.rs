//! The length and count limits of every field a person writes, in one place.
//!
//! The validator ([`crate::validate`]) runs [`check_hazard`] and [`check_visit`] on the decoded
//! document after every batch, so a limit holds whatever client wrote the change (a phone, the
//! web, or a hand-made sync message); the web forms and the phone read the same numbers to stop a
//! user early. Limits are in characters (Unicode scalar values), not bytes.

use crate::doc::{HazardDoc, VisitDoc};
use crate::rectification::EventKind;

/// A limit that a document or an input breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A text is longer than its limit.
    #[error("{field} is {len} characters, above the limit of {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list holds more items than its limit.
    #[error("{field} holds {len} items, above the limit of {max}")]
    TooMany {
        /// Which list.
        field: &'static str,
        /// How many it holds.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl LimitError {
    /// The field's key.
    pub const fn field(&self) -> &'static str {
        match self {
            LimitError::TooLong { field, .. } | LimitError::TooMany { field, .. } => field,
        }
    }

    /// The message for people, Simplified Chinese first.
    pub fn message(&self) -> String {
        match self {
            LimitError::TooLong { field, len, max } => format!(
                "{}不能超过 {max} 个字（现有 {len} 个） / {} must be at most {max} characters (has {len})",
                field_label_zh(field),
                field_label_en(field)
            ),
            LimitError::TooMany { field, len, max } => format!(
                "{}最多 {max} 项（现有 {len} 项） / at most {max} {} (has {len})",
                field_label_zh(field),
                field_label_en(field)
            ),
        }
    }
}

/// Every limited text field: key, maximum characters.
pub const TEXT_LIMITS: &[(&str, usize)] = &[
    // hazard details
    ("location", 200),
    ("description", 4_000),
    ("criterion", 500),
    ("measure", 4_000),
    ("responsible_person", 100),
    ("emergency_plan", 4_000),
    // visit details
    ("place", 200),
    ("overall_assessment", 8_000),
    ("notes", 8_000),
    ("checklist.title", 500),
    ("checklist.note", 2_000),
    ("service_plan.frequency", 200),
    ("service_plan.entry", 100),
    // signatures and events
    ("signer", 50),
    ("reason", 2_000),
    ("note", 4_000),
    ("to", 200),
];

/// Counts of lists.
pub const COUNT_LIMITS: &[(&str, usize)] = &[
    ("photos", 50),
    ("events", 1_000),
    ("checklist", 500),
    ("inspectors", 20),
    ("signatures", 50),
    ("signed_hazards", 500),
    ("service_plan.entries", 50),
];

fn lookup(table: &[(&str, usize)], field: &str, otherwise: usize) -> usize {
    table
        .iter()
        .find(|(k, _)| *k == field)
        .map_or(otherwise, |(_, n)| *n)
}

/// The limit for a text field; 200 for a key not in [`TEXT_LIMITS`] (every key the documents
/// hold is listed: a test checks each is labelled).
pub fn max_chars(field: &str) -> usize {
    lookup(TEXT_LIMITS, field, 200)
}

/// The limit for a list; 50 for a key not in [`COUNT_LIMITS`].
pub fn max_items(field: &str) -> usize {
    lookup(COUNT_LIMITS, field, 50)
}

/// Checks one text against its limit.
pub fn text(field: &'static str, value: &str) -> Result<(), LimitError> {
    let max = max_chars(field);
    // Count lazily: a hostile value of megabytes stops counting at the limit.
    let len = value.chars().take(max + 1).count();
    if len > max {
        return Err(LimitError::TooLong {
            field,
            len: value.chars().count(),
            max,
        });
    }
    Ok(())
}

/// Checks one list's length against its limit.
pub fn count(field: &'static str, len: usize) -> Result<(), LimitError> {
    let max = max_items(field);
    if len > max {
        return Err(LimitError::TooMany { field, len, max });
    }
    Ok(())
}

/// Checks the texts of one event kind.
pub fn check_event(kind: &EventKind) -> Result<(), LimitError> {
    use EventKind::*;
    match kind {
        Notified | NoticeIssued { .. } => Ok(()),
        SignedFor { signer } => text("signer", signer),
        ExtensionRequested { reason, .. } | ExtensionRefused { reason, .. } => {
            text("reason", reason)
        }
        ExtensionGranted { .. } => Ok(()),
        RectificationSubmitted { note, photos } => {
            text("note", note)?;
            count("photos", photos.len())
        }
        Verified { note, .. }
        | SupervisionPut { note }
        | SupervisionLifted { note }
        | Closed { note } => text("note", note),
        ReportedToRegulator { to } => text("to", to),
        Reopened { reason } | Regraded { reason, .. } => text("reason", reason),
    }
}

/// Checks every limited field of a hazard document.
pub fn check_hazard(h: &HazardDoc) -> Result<(), LimitError> {
    text("location", &h.location)?;
    text("description", h.description.as_str())?;
    text("criterion", &h.criterion)?;
    text("measure", h.measure.as_str())?;
    text("responsible_person", &h.responsible_person)?;
    text("emergency_plan", &h.emergency_plan)?;
    count("photos", h.photos.len())?;
    count("events", h.events.len())?;
    for e in &h.events {
        check_event(&e.kind)?;
    }
    Ok(())
}

/// Checks every limited field of a visit document.
pub fn check_visit(v: &VisitDoc) -> Result<(), LimitError> {
    text("place", &v.place)?;
    text("overall_assessment", v.overall_assessment.as_str())?;
    text("notes", v.notes.as_str())?;
    count("inspectors", v.inspectors.len())?;
    count("checklist", v.checklist.len())?;
    for item in &v.checklist {
        text("checklist.title", &item.title)?;
        text("checklist.note", &item.note)?;
    }
    if let Some(plan) = &v.service_plan {
        text("service_plan.frequency", &plan.frequency)?;
        count("service_plan.entries", plan.specialties.len())?;
        count("service_plan.entries", plan.grades.len())?;
        for s in plan.specialties.iter().chain(&plan.grades) {
            text("service_plan.entry", s)?;
        }
    }
    if let Some(s) = &v.signature {
        text("signer", &s.signer_name)?;
    }
    count("signatures", v.signatures.len())?;
    for s in &v.signatures {
        text("signer", &s.signer_name)?;
        count("signed_hazards", s.hazards.len())?;
    }
    Ok(())
}

/// Simplified Chinese name of a field, for messages.
pub fn field_label_zh(field: &str) -> &'static str {
    match field {
        "location" => "隐患部位",
        "description" => "隐患描述",
        "category" => "隐患类别",
        "grade" => "隐患等级",
        "criterion" => "判定依据",
        "measure" => "整改措施",
        "deadline" => "整改期限",
        "responsible_person" => "整改责任人",
        "funds_yuan" => "整改资金",
        "emergency_plan" => "应急预案",
        "photos" => "照片",
        "place" => "检查地点",
        "overall_assessment" => "总体评价",
        "notes" => "备注",
        "checklist" | "checklist.title" | "checklist.note" => "检查表",
        "service_plan"
        | "service_plan.frequency"
        | "service_plan.entry"
        | "service_plan.entries" => "服务方案",
        "inspectors" => "检查人员",
        "signature" | "signatures" | "signed_hazards" => "签字",
        "signer" => "签字人姓名",
        "reason" => "理由",
        "note" => "说明",
        "to" => "上报单位",
        "events" => "整改记录",
        "visit_kind" => "检查类型",
        "started_at" | "ended_at" => "检查时间",
        "gps" => "位置",
        "schema" => "文档版本",
        "kind" => "文档类型",
        "id" => "编号",
        "enterprise_id" => "企业",
        "agency_id" => "服务机构",
        "township_id" => "乡镇（街道）",
        "created_by" => "记录人",
        "created_at" => "记录时间",
        "visit_id" => "所属检查",
        "signature_v1" => "签字",
        _ => "字段",
    }
}

/// English name of a field, for messages.
pub fn field_label_en(field: &str) -> &'static str {
    match field {
        "location" => "location",
        "description" => "description",
        "category" => "category",
        "grade" => "grade",
        "criterion" => "criterion",
        "measure" => "measure",
        "deadline" => "deadline",
        "responsible_person" => "responsible person",
        "funds_yuan" => "funds",
        "emergency_plan" => "emergency plan",
        "photos" => "photos",
        "place" => "place",
        "overall_assessment" => "overall assessment",
        "notes" => "notes",
        "checklist" | "checklist.title" | "checklist.note" => "checklist",
        "service_plan"
        | "service_plan.frequency"
        | "service_plan.entry"
        | "service_plan.entries" => "service plan",
        "inspectors" => "inspectors",
        "signature" | "signatures" | "signed_hazards" => "signature",
        "signer" => "signer's name",
        "reason" => "reason",
        "note" => "note",
        "to" => "recipient",
        "events" => "rectification history",
        "visit_kind" => "visit kind",
        "started_at" | "ended_at" => "visit time",
        "gps" => "position",
        "schema" => "schema version",
        "kind" => "document kind",
        "id" => "id",
        "enterprise_id" => "enterprise",
        "agency_id" => "agency",
        "township_id" => "township",
        "created_by" => "recorded by",
        "created_at" => "recorded at",
        "visit_id" => "visit",
        "signature_v1" => "signature",
        _ => "field",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_over_its_limit_is_named_in_both_languages() {
        assert!(text("signer", &"张".repeat(50)).is_ok());
        let e = text("signer", &"张".repeat(51)).unwrap_err();
        assert_eq!(e.field(), "signer");
        let m = e.message();
        assert!(m.starts_with("签字人姓名不能超过 50 个字"), "{m}");
        assert!(
            m.contains("signer's name must be at most 50 characters"),
            "{m}"
        );
    }

    #[test]
    fn every_text_limit_is_labelled() {
        for (k, _) in TEXT_LIMITS {
            assert_ne!(field_label_zh(k), "字段", "{k}");
            assert_ne!(field_label_en(k), "field", "{k}");
        }
    }
}
