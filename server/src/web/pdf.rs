//! The rectification notice (整改通知书) as a PDF, with `krilla`: it embeds a *subset* of a CJK
//! TrueType/OpenType font (collections such as `wqy-microhei.ttc` included) with a ToUnicode map,
//! so the Chinese text is both drawn and extractable (`pdftotext`). No font ships with the
//! binary: one is found at runtime from [`FONT_ENV`] or the usual Debian/Ubuntu/Fedora paths.
//!
//! Layout is done here, line by line: A4 portrait, text wrapped by an estimate of each
//! character's advance (CJK one em, others about half), which is enough for a form.
//!
//! Pictures: each hazard's photos are drawn under it, three to a row, from the stored thumbnails
//! (JPEG, at most [`MAX_PHOTOS_PER_HAZARD`] per hazard and [`MAX_PHOTOS`] per notice, each at most
//! [`MAX_IMAGE_BYTES`]); the enterprise head's signature image is drawn in the signature block.
//! The caller ([`super::notice`]) reads the thumbnails from the photo store; a photo the server has
//! not received yet is noted as such (照片尚未上传 / photo not uploaded yet) instead. krilla embeds
//! the JPEG bytes as they are (its `raster-images` feature, on by default).

use std::path::PathBuf;

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};

use super::notice::VisitRecord;

/// Environment variable naming the font file for PDF notices (`path` or `path#index` for a
/// collection).
pub const FONT_ENV: &str = "INSPECT_PDF_FONT";

/// Where CJK fonts are usually installed, in order of preference.
const DEFAULT_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/// A loaded font file and the face to use in it.
#[derive(Debug, Clone)]
pub struct FontFile {
    pub path: PathBuf,
    pub index: u32,
    pub data: Vec<u8>,
}

/// Finds and reads the notice font; on failure returns the paths tried.
pub fn find_font() -> Result<FontFile, Vec<String>> {
    let mut candidates: Vec<(PathBuf, u32)> = Vec::new();
    if let Ok(v) = std::env::var(FONT_ENV)
        && !v.trim().is_empty()
    {
        let (path, index) = match v.rsplit_once('#') {
            Some((p, i)) if i.parse::<u32>().is_ok() => (p.to_owned(), i.parse().unwrap_or(0)),
            _ => (v.clone(), 0),
        };
        candidates.push((PathBuf::from(path), index));
    }
    candidates.extend(DEFAULT_FONTS.iter().map(|p| (PathBuf::from(p), 0)));
    for (path, index) in &candidates {
        if let Ok(data) = std::fs::read(path)
            && Font::new(data.clone().into(), *index).is_some()
        {
            return Ok(FontFile {
                path: path.clone(),
                index: *index,
                data,
            });
        }
    }
    Err(candidates
        .into_iter()
        .map(|(p, _)| p.display().to_string())
        .collect())
}

/// Most photos drawn under one hazard; the rest are counted in a line of text.
pub const MAX_PHOTOS_PER_HAZARD: usize = 6;
/// Most photos drawn in one notice (signature not included).
pub const MAX_PHOTOS: usize = 60;
/// Largest thumbnail embedded; a bigger file is noted as unavailable (thumbnails are ~20-60 kB).
pub const MAX_IMAGE_BYTES: u64 = 1 << 20;
/// The note printed where a photo the server does not have yet would be.
pub const NOT_UPLOADED: &str = "照片尚未上传 / photo not uploaded yet";
/// The note printed where a stored photo could not be read.
pub const UNREADABLE: &str = "照片无法读取 / photo unavailable";

/// A photo as the notice gets it from the photo store.
#[derive(Clone)]
pub enum PhotoImage {
    /// The thumbnail's JPEG bytes.
    Jpeg(Vec<u8>),
    /// The document references it, but it has not been uploaded (yet).
    NotUploaded,
    /// Stored, but could not be read or is not a usable JPEG.
    Unreadable,
}

impl std::fmt::Debug for PhotoImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Jpeg(bytes) => write!(f, "Jpeg({} bytes)", bytes.len()),
            Self::NotUploaded => f.write_str("NotUploaded"),
            Self::Unreadable => f.write_str("Unreadable"),
        }
    }
}

/// The pictures of a notice: per hazard (in the record's order) the photos to draw, at most
/// [`MAX_PHOTOS_PER_HAZARD`] each, and the signature image.
#[derive(Debug, Clone, Default)]
pub struct NoticeImages {
    pub hazards: Vec<Vec<PhotoImage>>,
    pub signature: Option<PhotoImage>,
}

/// Which of a record's photos a notice draws, as (hazard index, photo index) pairs in order: the
/// first [`MAX_PHOTOS_PER_HAZARD`] of each hazard, [`MAX_PHOTOS`] in all.
pub fn photos_to_draw(record: &VisitRecord) -> Vec<Vec<usize>> {
    let mut left = MAX_PHOTOS;
    record
        .hazards
        .iter()
        .map(|h| {
            let n = h.photos.len().min(MAX_PHOTOS_PER_HAZARD).min(left);
            left -= n;
            (0..n).collect()
        })
        .collect()
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;

/// What is drawn on a page.
#[derive(Debug, Clone)]
enum Item {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Rule {
        y: f32,
    },
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        image: Image,
    },
}

/// Box a hazard photo is fitted into (4:3), three to a row.
const PHOTO_W: f32 = 155.0;
const PHOTO_H: f32 = 116.0;
const PHOTO_GAP: f32 = 10.0;
/// Box the signature image is fitted into.
const SIGNATURE_W: f32 = 200.0;
const SIGNATURE_H: f32 = 90.0;

/// A JPEG as a krilla image with the size it is drawn at inside a `max_w` × `max_h` box, keeping
/// its aspect ratio; `None` when the bytes are not a JPEG krilla can read.
fn fitted(bytes: &[u8], max_w: f32, max_h: f32) -> Option<(Image, f32, f32)> {
    let image = Image::from_jpeg(bytes.to_vec().into(), true).ok()?;
    let (w, h) = image.size();
    if w == 0 || h == 0 {
        return None;
    }
    let scale = (max_w / w as f32).min(max_h / h as f32);
    Some((image, w as f32 * scale, h as f32 * scale))
}

/// Estimated advance of a character in ems.
fn advance(c: char) -> f32 {
    if c.is_ascii() {
        if c.is_ascii_uppercase() || c == 'm' || c == 'w' {
            0.65
        } else {
            0.5
        }
    } else {
        1.0
    }
}

/// Breaks `text` into lines no wider than `width` at font `size`.
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut w = 0.0;
        for c in para.chars() {
            let a = advance(c) * size;
            if w + a > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                w = 0.0;
            }
            line.push(c);
            w += a;
        }
        lines.push(line);
    }
    lines
}

/// Lays out pages top to bottom.
#[derive(Debug, Default)]
struct Layout {
    pages: Vec<Vec<Item>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn room(&mut self, height: f32) {
        if self.y + height > PAGE_H - MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn push(&mut self, item: Item) {
        if let Some(page) = self.pages.last_mut() {
            page.push(item);
        }
    }

    /// A paragraph at `indent`, wrapped.
    fn text(&mut self, indent: f32, size: f32, text: &str) {
        let lead = size * 1.5;
        for line in wrap(text, size, PAGE_W - 2.0 * MARGIN - indent) {
            self.room(lead);
            self.y += lead;
            let y = self.y - size * 0.35;
            self.push(Item::Text {
                x: MARGIN + indent,
                y,
                size,
                text: line,
            });
        }
    }

    /// A labelled field: `label：value`, the value wrapped under itself.
    fn field(&mut self, label: &str, value: &str) {
        let value = if value.trim().is_empty() {
            "—"
        } else {
            value
        };
        self.text(0.0, 10.5, &format!("{label}：{value}"));
    }

    fn centred(&mut self, size: f32, text: &str) {
        let w: f32 = text.chars().map(advance).sum::<f32>() * size;
        self.room(size * 2.0);
        self.y += size * 2.0;
        let y = self.y - size * 0.5;
        self.push(Item::Text {
            x: ((PAGE_W - w) / 2.0).max(MARGIN),
            y,
            size,
            text: text.to_owned(),
        });
    }

    fn rule(&mut self) {
        self.room(10.0);
        self.y += 6.0;
        let y = self.y;
        self.push(Item::Rule { y });
        self.y += 4.0;
    }

    fn gap(&mut self, h: f32) {
        self.y += h;
    }

    /// Images in rows at `indent`, each fitted into a `w` × `h` box; returns the notes for those
    /// that cannot be drawn, by their position (1-based) in `photos`.
    fn images(
        &mut self,
        indent: f32,
        w: f32,
        h: f32,
        photos: &[&PhotoImage],
    ) -> Vec<(usize, &'static str)> {
        let per_row =
            (((PAGE_W - 2.0 * MARGIN - indent + PHOTO_GAP) / (w + PHOTO_GAP)) as usize).max(1);
        let mut notes = Vec::new();
        let mut drawable = Vec::new();
        for (i, p) in photos.iter().enumerate() {
            match p {
                PhotoImage::Jpeg(bytes) => match fitted(bytes, w, h) {
                    Some(fit) => drawable.push(fit),
                    None => notes.push((i + 1, UNREADABLE)),
                },
                PhotoImage::NotUploaded => notes.push((i + 1, NOT_UPLOADED)),
                PhotoImage::Unreadable => notes.push((i + 1, UNREADABLE)),
            }
        }
        for row in drawable.chunks(per_row) {
            let row_h = row.iter().map(|(_, _, ih)| *ih).fold(0.0, f32::max);
            self.room(row_h + PHOTO_GAP);
            self.y += PHOTO_GAP / 2.0;
            let mut x = MARGIN + indent;
            for (image, iw, ih) in row {
                self.push(Item::Image {
                    x,
                    y: self.y,
                    w: *iw,
                    h: *ih,
                    image: image.clone(),
                });
                x += w + PHOTO_GAP;
            }
            self.y += row_h + PHOTO_GAP / 2.0;
        }
        notes
    }
}

fn china_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(crate::clock::china_standard_time())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn grade_zh(grade: &str) -> &'static str {
    match grade {
        "major" => "重大事故隐患",
        "general" => "一般隐患",
        _ => "—",
    }
}

/// Lays the notice out; `images` holds the pictures [`photos_to_draw`] chose.
fn layout(r: &VisitRecord, images: &NoticeImages) -> Layout {
    let mut l = Layout::new();
    let enterprise = r.enterprise.as_ref().map(|e| e.name.as_str()).unwrap_or("");
    l.centred(18.0, "隐患整改通知书");
    l.centred(10.0, "Rectification notice");
    l.gap(6.0);
    l.field("被检查单位", enterprise);
    if let Some(e) = &r.enterprise {
        l.field("统一社会信用代码", &e.uscc);
        l.field("地址", &e.address);
    }
    l.field("所属乡镇（街道）", &r.township_name);
    l.field("服务机构", &r.agency_name);
    l.field("检查地点", &r.visit.place);
    l.field("检查时间", &china_time(r.visit.started_at));
    l.field("文书编号", &r.visit.id);
    l.rule();
    l.text(
        0.0,
        10.5,
        &format!(
            "{enterprise}：经检查，你单位存在下列安全生产问题和事故隐患，请按要求落实整改措施，于期限内完成整改，并将整改情况书面报告。共 {} 项。",
            r.hazards.len()
        ),
    );
    for (i, h) in r.hazards.iter().enumerate() {
        let row = &h.row;
        l.gap(6.0);
        l.room(60.0);
        l.text(
            0.0,
            12.0,
            &format!("{}、{}（{}）", i + 1, row.description, grade_zh(&row.grade)),
        );
        l.field("　部位", &row.location);
        l.field("　隐患描述", &row.description);
        l.field("　判定依据", &row.criterion);
        l.field("　隐患等级", grade_zh(&row.grade));
        l.field("　整改措施", &row.measure);
        l.field("　整改期限", row.deadline.as_deref().unwrap_or("—"));
        l.field("　整改责任人", &row.responsible_person);
        if row.grade == "major" {
            l.field(
                "　整改资金",
                &h.funds_yuan
                    .map(|f| format!("{f} 元"))
                    .unwrap_or_else(|| "—".into()),
            );
            l.field("　应急预案", &h.emergency_plan);
        }
        let drawn: Vec<&PhotoImage> = images
            .hazards
            .get(i)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        if h.photos.is_empty() {
            l.field("　现场照片", "无");
        } else {
            l.field("　现场照片", &format!("{} 张", h.photos.len()));
            for (n, note) in l.images(10.5, PHOTO_W, PHOTO_H, &drawn) {
                let sha: String = h
                    .photos
                    .get(n - 1)
                    .map(|p| p.sha256.chars().take(12).collect())
                    .unwrap_or_default();
                l.text(10.5, 9.0, &format!("照片 {n}：{note}（{sha}）"));
            }
            let left_out = h.photos.len().saturating_sub(drawn.len());
            if left_out > 0 {
                l.text(
                    10.5,
                    9.0,
                    &format!(
                        "另有 {left_out} 张照片未收入本通知书，请在平台查看 / {left_out} more photos are in the platform"
                    ),
                );
            }
        }
    }
    l.rule();
    match &r.signature {
        Some(s) => {
            l.field("企业负责人签收", &s.signer_name);
            l.field("签收时间", &china_time(s.signed_at));
            let image = images.signature.clone().unwrap_or(PhotoImage::Unreadable);
            l.text(0.0, 10.5, "签名：");
            for (_, note) in l.images(10.5, SIGNATURE_W, SIGNATURE_H, &[&image]) {
                l.text(
                    10.5,
                    9.0,
                    &format!(
                        "签名图像{note}（{}）",
                        s.image.sha256.chars().take(12).collect::<String>()
                    ),
                );
            }
        }
        None => l.field("企业负责人签收", "（未签收）"),
    }
    l.gap(10.0);
    l.text(
        0.0,
        9.0,
        "重大事故隐患须落实整改责任、措施、资金、时限和应急预案（五落实），并报告属地政府有关部门。",
    );
    l
}

/// Renders the notice with its pictures.
pub fn notice(
    record: &VisitRecord,
    images: &NoticeImages,
    font: FontFile,
) -> anyhow::Result<Vec<u8>> {
    render(layout(record, images), font)
}

/// What the enterprise file PDF shows of the enterprise.
#[derive(Debug, Clone, Default)]
pub struct FileHead {
    pub name: String,
    pub uscc: String,
    pub address: String,
    pub industry: String,
    /// China date it was made.
    pub made_on: String,
}

/// At most this many pictures per hazard in the enterprise file PDF.
pub const FILE_PHOTOS_PER_HAZARD: usize = 4;

/// The enterprise file (一企一档) as a PDF: the enterprise, its visits, and every hazard of its
/// ledger with its course (measure, funds, deadline, progress, re-inspection, closure, report)
/// and up to [`FILE_PHOTOS_PER_HAZARD`] pictures each (`images`, in the order of `rows`).
pub fn enterprise_file(
    head: &FileHead,
    visits: &[crate::api::hazards::VisitRow],
    rows: &[crate::ledger::LedgerRow],
    images: &[Vec<PhotoImage>],
    font: FontFile,
) -> anyhow::Result<Vec<u8>> {
    let mut l = Layout::new();
    l.centred(18.0, "企业安全生产档案（一企一档）");
    l.centred(10.0, "Enterprise safety file");
    l.gap(6.0);
    l.field("企业名称", &head.name);
    l.field("统一社会信用代码", &head.uscc);
    l.field("地址", &head.address);
    l.field("行业", &head.industry);
    l.field("建档日期", &head.made_on);
    l.rule();
    l.text(0.0, 13.0, &format!("检查记录（{} 次）", visits.len()));
    for v in visits {
        let signed = v.signed_by.as_deref().unwrap_or("未签字");
        l.text(
            12.0,
            10.0,
            &format!(
                "{}　{}　检查项 {} 项，不符合 {} 项　企业签字：{signed}",
                china_time(v.started_at),
                v.place,
                v.checklist_total,
                v.checklist_failed
            ),
        );
    }
    l.rule();
    l.text(0.0, 13.0, &format!("隐患排查治理台账（{} 条）", rows.len()));
    for (i, r) in rows.iter().enumerate() {
        l.gap(4.0);
        l.room(60.0);
        l.text(0.0, 11.0, &format!("{}. {}", i + 1, r.description));
        for (label, value) in [
            ("排查时间", r.found_at.as_str()),
            ("排查部位", r.location.as_str()),
            ("参加人员", r.participants.as_str()),
            ("隐患等级", r.grade.as_str()),
            ("整改措施", r.measure.as_str()),
            ("整改资金（元）", r.funds_yuan.as_str()),
            ("整改责任人", r.responsible_person.as_str()),
            ("整改期限", r.deadline.as_str()),
            ("整改进展", r.progress.as_str()),
            ("复查结果", r.reinspection_result.as_str()),
            (
                "复查人及日期",
                &format!("{} {}", r.reinspector, r.reinspected_on),
            ),
            ("销号日期", r.closed_on.as_str()),
            (
                "重大隐患报告",
                &format!("{} {}", r.reported_at, r.reported_to),
            ),
        ] {
            let value = if value.trim().is_empty() {
                "—"
            } else {
                value
            };
            l.text(12.0, 9.5, &format!("{label}：{value}"));
        }
        let pictures: Vec<&PhotoImage> = images
            .get(i)
            .map(|v| v.iter().take(FILE_PHOTOS_PER_HAZARD).collect())
            .unwrap_or_default();
        if !pictures.is_empty() {
            let notes = l.images(12.0, 110.0, 82.0, &pictures);
            for (n, note) in notes {
                l.text(12.0, 9.0, &format!("照片 {n}：{note}"));
            }
        }
    }
    render(l, font)
}

/// Draws laid-out pages with `font`, numbering them.
fn render(layout: Layout, font: FontFile) -> anyhow::Result<Vec<u8>> {
    let font = Font::new(font.data.into(), font.index)
        .ok_or_else(|| anyhow::anyhow!("the PDF font cannot be read"))?;
    let mut document = Document::new();
    let settings =
        PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| anyhow::anyhow!("page size"))?;
    let pages = layout.pages.len();
    for (n, items) in layout.pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for item in items {
            match item {
                Item::Text { x, y, size, text } => surface.draw_text(
                    Point::from_xy(x, y),
                    font.clone(),
                    size,
                    &text,
                    false,
                    TextDirection::Auto,
                ),
                Item::Rule { y } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(MARGIN, y);
                    pb.line_to(PAGE_W - MARGIN, y);
                    if let Some(path) = pb.finish() {
                        surface.set_stroke(Some(Stroke {
                            width: 0.5,
                            ..Stroke::default()
                        }));
                        surface.draw_path(&path);
                        surface.set_stroke(None);
                    }
                }
                Item::Image { x, y, w, h, image } => {
                    if let Some(size) = Size::from_wh(w, h) {
                        surface.push_transform(&Transform::from_translate(x, y));
                        surface.draw_image(image, size);
                        surface.pop();
                    }
                }
            }
        }
        let footer = format!("第 {} 页 / 共 {pages} 页", n + 1);
        surface.draw_text(
            Point::from_xy(PAGE_W / 2.0 - 30.0, PAGE_H - 25.0),
            font.clone(),
            8.0,
            &footer,
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| anyhow::anyhow!("PDF rendering failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::notice::{NoticeHazard, SignatureInfo};
    use sync_core::domain::PhotoRef;

    fn jpeg() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    fn photo(n: usize) -> PhotoRef {
        PhotoRef {
            sha256: format!("{n:064x}"),
            size: 1,
            media_type: "image/jpeg".into(),
            captured_at: None,
            gps: None,
            added_by: "u".into(),
            original_sha256: None,
            exif_unreadable: None,
        }
    }

    fn record(photos_per_hazard: &[usize]) -> VisitRecord {
        let visit = serde_json::from_value(serde_json::json!({
            "id": "v", "enterprise_id": "e", "agency_id": "a", "township_id": "t",
            "visit_kind": "routine", "inspectors": [], "started_at": 0, "ended_at": null,
            "place": "车间", "checklist_total": 0, "checklist_failed": 0, "signed_by": null
        }))
        .unwrap();
        let hazards = photos_per_hazard
            .iter()
            .enumerate()
            .map(|(i, &n)| NoticeHazard {
                signed: sync_core::doc::visit::SignedState::Signed,
                row: serde_json::from_value(serde_json::json!({
                    "id": format!("h{i}"), "visit_id": "v", "enterprise_id": "e", "enterprise_name": "厂",
                    "agency_id": "a", "township_id": "t", "location": "", "description": "隐患",
                    "category": "", "grade": "general", "criterion": "", "measure": "", "deadline": null,
                    "responsible_person": "", "state": "notified", "overdue": false, "created_at": 0,
                    "closed_at": null, "reported_at": null, "under_supervision": false, "photo_count": n
                }))
                .unwrap(),
                funds_yuan: None,
                emergency_plan: String::new(),
                photos: (0..n).map(|k| photo(i * 100 + k)).collect(),
            })
            .collect();
        VisitRecord {
            visit,
            enterprise: None,
            agency_name: String::new(),
            township_name: String::new(),
            checklist: vec![],
            overall_assessment: String::new(),
            notes: String::new(),
            signature: Some(SignatureInfo {
                signer_name: "王厂长".into(),
                image: photo(999),
                signed_at: 0,
            }),
            hazards,
        }
    }

    fn drawn(l: &Layout) -> (usize, String) {
        let mut images = 0;
        let mut text = String::new();
        for item in l.pages.iter().flatten() {
            match item {
                Item::Image { .. } => images += 1,
                Item::Text { text: t, .. } => text.push_str(t),
                Item::Rule { .. } => {}
            }
        }
        (images, text)
    }

    #[test]
    fn photos_beyond_the_limits_are_counted_not_drawn() {
        let r = record(&[MAX_PHOTOS_PER_HAZARD + 2, 1]);
        let chosen = photos_to_draw(&r);
        assert_eq!(chosen[0].len(), MAX_PHOTOS_PER_HAZARD);
        assert_eq!(chosen[1].len(), 1);
        let images = NoticeImages {
            hazards: chosen
                .iter()
                .map(|c| c.iter().map(|_| PhotoImage::Jpeg(jpeg())).collect())
                .collect(),
            signature: Some(PhotoImage::Jpeg(jpeg())),
        };
        let (n, text) = drawn(&layout(&r, &images));
        assert_eq!(
            n,
            MAX_PHOTOS_PER_HAZARD + 1 + 1,
            "hazard photos and the signature"
        );
        assert!(text.contains("另有 2 张照片未收入本通知书"), "{text}");

        let many = record(&[MAX_PHOTOS_PER_HAZARD; MAX_PHOTOS / MAX_PHOTOS_PER_HAZARD + 3]);
        let total: usize = photos_to_draw(&many).iter().map(Vec::len).sum();
        assert_eq!(total, MAX_PHOTOS);
    }

    #[test]
    fn missing_and_broken_photos_are_noted_in_both_languages() {
        let r = record(&[2]);
        let images = NoticeImages {
            hazards: vec![vec![
                PhotoImage::NotUploaded,
                PhotoImage::Jpeg(b"not a jpeg".to_vec()),
            ]],
            signature: Some(PhotoImage::NotUploaded),
        };
        let (n, text) = drawn(&layout(&r, &images));
        assert_eq!(n, 0);
        assert_eq!(text.matches(NOT_UPLOADED).count(), 2, "{text}");
        assert!(text.contains(UNREADABLE), "{text}");
    }

    #[test]
    fn wrapping_keeps_every_character_and_respects_the_width() {
        let text = "冲床光电保护装置失效，需立即停用并修复 (GB 5083)";
        let lines = wrap(text, 10.0, 100.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), text);
        for line in &lines {
            assert!(line.chars().map(advance).sum::<f32>() * 10.0 <= 100.0);
        }
    }
}
