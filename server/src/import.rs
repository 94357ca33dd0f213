//! Bulk imports of enterprises, users and contracts from the tables people keep (CSV in UTF-8,
//! GBK or GB18030, or an Excel workbook: [`crate::table`]). Columns are found by their heads,
//! Chinese or English. Every row is checked first and every problem reported with its row and
//! column; only when no row has one is anything stored, all rows in one transaction. A file is
//! thus either imported whole or not at all, and can be fixed and imported again.

use std::collections::HashMap;

use indicatif::ProgressBar;
use jiff::civil::Date;

use crate::clock::Clock;
use crate::db::{Db, NewContract, NewEnterprise, NewUser};
use crate::model::{OrgKind, Role, Uscc};
use crate::table::{self, Table, column_letter};

/// A row that was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRow {
    /// The row number in the spreadsheet (the header is row 1 in a CSV file).
    pub row: u64,
    pub id: String,
    /// What identifies the row to a person: the credit code, the username, the contract's pair.
    pub key: String,
}

/// A problem with one cell or row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: u64,
    /// `B 列「统一社会信用代码」`: the column's letter and its head in the file.
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(
                f,
                "第 {} 行 {c} / row {}: {}",
                self.row, self.row, self.message
            ),
            None => write!(f, "第 {} 行 / row {}: {}", self.row, self.row, self.message),
        }
    }
}

/// What an import did: either rows stored and no errors, or errors and nothing stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// How the file was read (`UTF-8`, `GBK/GB18030`, `UTF-16`, `xlsx`).
    pub encoding: &'static str,
    pub imported: Vec<ImportedRow>,
    pub errors: Vec<RowError>,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Enterprises,
    Users,
    Contracts,
}

impl Kind {
    /// What the rows are, with a Chinese measure word, and in English.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Kind::Enterprises => ("家企业", "enterprises"),
            Kind::Users => ("个用户", "users"),
            Kind::Contracts => ("份合同", "contracts"),
        }
    }
}

/// What a file may add: anything (the operator's command line), or only what belongs to one
/// township or one organisation (a web import by its supervisor or agency admin). A row
/// outside is a row error like any other, so the file is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Within {
    Anything,
    /// Enterprises registered in this township (its id).
    Township(String),
    /// Users of this organisation, contracts of this agency.
    Organisation(OrgKind, String),
}

/// Runs the importer of `kind`, for rows `within`.
pub async fn import(
    kind: Kind,
    db: &Db,
    clock: &dyn Clock,
    bytes: &[u8],
    within: &Within,
    progress: &ProgressBar,
) -> anyhow::Result<ImportReport> {
    match kind {
        Kind::Enterprises => enterprises(db, clock, bytes, within, progress).await,
        Kind::Users => users(db, clock, bytes, within, progress).await,
        Kind::Contracts => contracts(db, clock, bytes, within, progress).await,
    }
}

/// A column the importer looks for: its name in messages, the heads it is known by, whether
/// it is required.
type Wanted = (&'static str, &'static [&'static str], bool);

/// One row being checked, with the columns found.
struct Row<'a> {
    number: u64,
    cells: &'a [String],
    header: &'a [String],
    cols: &'a [Option<usize>],
    errors: Vec<RowError>,
}

impl<'a> Row<'a> {
    /// The trimmed text of wanted column `i` (empty when absent).
    fn get(&self, i: usize) -> &'a str {
        self.cols[i]
            .and_then(|c| self.cells.get(c))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn column(&self, i: usize) -> Option<String> {
        self.cols[i].map(|c| {
            let head = self.header.get(c).map(String::as_str).unwrap_or("");
            format!("{} 列「{head}」", column_letter(c))
        })
    }

    fn fail(&mut self, i: usize, zh: impl std::fmt::Display, en: impl std::fmt::Display) {
        let column = self.column(i);
        self.errors.push(RowError {
            row: self.number,
            column,
            message: format!("{zh} / {en}"),
        });
    }

    /// A message already in both languages.
    fn fail_msg(&mut self, i: usize, message: &str) {
        let column = self.column(i);
        self.errors.push(RowError {
            row: self.number,
            column,
            message: message.to_owned(),
        });
    }

    /// Column `i`, which must not be empty and must be at most `max` characters.
    fn text(&mut self, i: usize, max: usize) -> Option<String> {
        let v = self.get(i);
        if v.is_empty() {
            self.fail(i, "不能为空", "must not be empty");
            return None;
        }
        if v.chars().count() > max {
            self.fail(
                i,
                format!("超过 {max} 个字符"),
                format!("longer than {max} characters"),
            );
            return None;
        }
        Some(v.to_owned())
    }
}

/// A file that cannot be read as a table of the kind asked for (its encoding, its size, a
/// missing column): the person who sent it can fix it. The message is Chinese first.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

fn start(bytes: &[u8], wanted: &[Wanted]) -> anyhow::Result<(Table, Vec<Option<usize>>)> {
    let table = table::read_table(bytes).map_err(|e| Unreadable(e.to_string()))?;
    let cols = table::locate(&table.header, wanted).map_err(|missing| {
        Unreadable(format!(
            "表头缺少列：{missing}（第 1 行应为列名） / the header row lacks the column(s) {missing}"
        ))
    })?;
    Ok((table, cols))
}

fn check_rows<'a, T>(
    table: &'a Table,
    cols: &'a [Option<usize>],
    progress: &ProgressBar,
    mut each: impl FnMut(&mut Row<'a>) -> Option<T>,
) -> (Vec<(u64, T)>, Vec<RowError>) {
    progress.set_length(table.rows.len() as u64);
    let mut good = Vec::new();
    let mut errors = Vec::new();
    for (number, cells) in &table.rows {
        let mut row = Row {
            number: *number,
            cells,
            header: &table.header,
            cols,
            errors: Vec::new(),
        };
        let value = each(&mut row);
        match value {
            Some(v) if row.errors.is_empty() => good.push((*number, v)),
            _ => errors.append(&mut row.errors),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    (good, errors)
}

/// Remembers the row where each key was first seen, to report repeats within the file.
#[derive(Default)]
struct Seen(HashMap<String, u64>);

impl Seen {
    fn first(&mut self, key: &str, row: u64) -> Option<u64> {
        match self.0.get(key) {
            Some(first) => Some(*first),
            None => {
                self.0.insert(key.to_owned(), row);
                None
            }
        }
    }
}

const ENTERPRISE_COLUMNS: &[Wanted] = &[
    (
        "企业名称",
        &["企业名称", "名称", "单位名称", "name", "enterprise"],
        true,
    ),
    (
        "统一社会信用代码",
        &[
            "统一社会信用代码",
            "社会信用代码",
            "信用代码",
            "uscc",
            "credit code",
        ],
        true,
    ),
    ("地址", &["地址", "注册地址", "经营地址", "address"], true),
    (
        "乡镇",
        &["乡镇", "所属乡镇", "乡镇（街道）", "乡镇街道", "township"],
        true,
    ),
    ("行业", &["行业", "所属行业", "industry"], true),
    ("园区", &["园区", "工业园区", "所属园区", "park"], false),
];

/// Imports enterprises: columns 企业名称, 统一社会信用代码, 地址, 乡镇 (an existing township's
/// name), 行业 and optionally 园区 (one of the township's parks).
pub async fn enterprises(
    db: &Db,
    clock: &dyn Clock,
    bytes: &[u8],
    within: &Within,
    progress: &ProgressBar,
) -> anyhow::Result<ImportReport> {
    let (table, cols) = start(bytes, ENTERPRISE_COLUMNS)?;
    // The lookups a row needs, done before the rows are checked (the check itself is sync).
    let mut townships: HashMap<String, Option<String>> = HashMap::new();
    let mut parks: HashMap<(String, String), bool> = HashMap::new();
    let mut registered: HashMap<String, bool> = HashMap::new();
    for (_, cells) in &table.rows {
        let cell = |i: usize| cols[i].and_then(|c| cells.get(c)).map(String::as_str);
        if let Some(t) = cell(3).filter(|t| !t.is_empty())
            && !townships.contains_key(t)
        {
            townships.insert(t.to_owned(), db.township_id_by_name(t).await?);
        }
        if let (Some(Some(tid)), Some(p)) = (
            cell(3).map(|t| townships.get(t).cloned().flatten()),
            cell(5),
        ) && !p.is_empty()
            && !parks.contains_key(&(tid.clone(), p.to_owned()))
        {
            let has = db.township_has_park(&tid, p).await?;
            parks.insert((tid, p.to_owned()), has);
        }
        if let Some(code) = cell(1).and_then(|c| Uscc::parse(c).ok()) {
            let taken = db.enterprise_id_by_uscc(&code).await?.is_some();
            registered.insert(code.to_string(), taken);
        }
    }
    let mut seen = Seen::default();
    let (good, errors) = check_rows(&table, &cols, progress, |row| {
        let name = row.text(0, 200);
        let uscc = match Uscc::parse(row.get(1)) {
            Ok(code) => {
                if registered.get(code.as_str()) == Some(&true) {
                    row.fail(
                        1,
                        format!("代码 {code} 已登记"),
                        format!("code {code} is registered already"),
                    );
                } else if let Some(first) = seen.first(code.as_str(), row.number) {
                    row.fail(
                        1,
                        format!("与第 {first} 行重复"),
                        format!("repeats row {first}"),
                    );
                }
                Some(code)
            }
            Err(e) => {
                row.fail(1, format!("{e}"), "not a valid unified social credit code");
                None
            }
        };
        let address = row.text(2, 500);
        let township = row.text(3, 100);
        let township_id = township.as_ref().and_then(|t| {
            let id = townships.get(t).cloned().flatten();
            if id.is_none() {
                row.fail(3, format!("乡镇“{t}”不存在"), format!("no township {t:?}"));
            }
            if let (Some(id), Within::Township(own)) = (&id, within)
                && id != own
            {
                row.fail(
                    3,
                    format!("“{t}”不是您所在的乡镇（街道），只能导入本辖区的企业"),
                    format!(
                        "{t:?} is not your township: only enterprises of your own may be imported"
                    ),
                );
            }
            id
        });
        let industry = row.text(4, 100);
        let park = Some(row.get(5))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        if let (Some(tid), Some(p)) = (&township_id, &park)
            && parks.get(&(tid.clone(), p.clone())) != Some(&true)
        {
            row.fail(
                5,
                format!("该乡镇没有园区“{p}”"),
                format!("the township has no park {p:?}"),
            );
        }
        Some(NewEnterprise {
            name: name?,
            uscc: uscc?,
            address: address?,
            township_id: township_id?,
            industry: industry?,
            park,
        })
    });
    finish(table.encoding, good, errors, |rows| async move {
        let keys: Vec<String> = rows.iter().map(|e| e.uscc.to_string()).collect();
        let ids = db.create_enterprises(&rows, clock.now()).await?;
        Ok((ids, keys))
    })
    .await
}

async fn finish<T, F, Fut>(
    encoding: &'static str,
    good: Vec<(u64, T)>,
    errors: Vec<RowError>,
    store: F,
) -> anyhow::Result<ImportReport>
where
    F: FnOnce(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<String>, Vec<String>)>>,
{
    if !errors.is_empty() {
        return Ok(ImportReport {
            encoding,
            imported: Vec::new(),
            errors,
        });
    }
    let (numbers, rows): (Vec<u64>, Vec<T>) = good.into_iter().unzip();
    let (ids, keys) = store(rows).await?;
    Ok(ImportReport {
        encoding,
        imported: numbers
            .into_iter()
            .zip(ids.into_iter().zip(keys))
            .map(|(row, (id, key))| ImportedRow { row, id, key })
            .collect(),
        errors: Vec::new(),
    })
}

const USER_COLUMNS: &[Wanted] = &[
    (
        "用户名",
        &["用户名", "账号", "登录名", "username", "login"],
        true,
    ),
    (
        "姓名",
        &["姓名", "显示名", "display name", "display_name"],
        false,
    ),
    ("角色", &["角色", "role"], true),
    (
        "所属单位",
        &[
            "所属单位",
            "单位",
            "组织",
            "所属组织",
            "organisation",
            "organization",
            "org",
        ],
        true,
    ),
    ("初始密码", &["初始密码", "密码", "password"], true),
    ("邮箱", &["邮箱", "电子邮箱", "email", "e-mail"], false),
];

/// A role as people write it: the stable text or the Chinese label (and common variants).
pub fn parse_role(s: &str) -> Option<Role> {
    let s = s.trim();
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == s || r.label_zh() == s)
        .or(match s {
            "检查人员" | "安全检查员" => Some(Role::Inspector),
            "企业" | "企业管理员" | "企业安全负责人" => Some(Role::EnterpriseManager),
            "监管员" | "监管" | "乡镇监管人员" => Some(Role::Supervisor),
            "机构管理" | "服务机构管理员" => Some(Role::AgencyAdmin),
            _ => None,
        })
}

/// Finds an organisation of `kind` by id, by name, or for an enterprise by credit code.
async fn resolve_org(db: &Db, kind: OrgKind, text: &str) -> anyhow::Result<Result<String, String>> {
    if db.organisation_kind(text).await? == Some(kind) {
        return Ok(Ok(text.to_owned()));
    }
    if kind == OrgKind::Enterprise
        && let Ok(code) = Uscc::parse(text)
        && let Some(id) = db.enterprise_id_by_uscc(&code).await?
    {
        return Ok(Ok(id));
    }
    let found = db.organisations_named(kind, text).await?;
    Ok(match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "没有名为“{text}”的{} / no {} named {text:?}",
            kind.zh(),
            kind.as_str()
        )),
        _ => Err(format!(
            "名为“{text}”的{}不止一个，请填写编号 / more than one {} is named {text:?}: give its id",
            kind.zh(),
            kind.as_str()
        )),
    })
}

/// Imports users: columns 用户名, 姓名 (optional), 角色 (`inspector` or 检查员, …), 所属单位
/// (the organisation's id or name, of the kind the role belongs to), 初始密码 (at least
/// [`crate::admin::MIN_PASSWORD_CHARS`] characters) and 邮箱 (optional: where reminders go).
pub async fn users(
    db: &Db,
    clock: &dyn Clock,
    bytes: &[u8],
    within: &Within,
    progress: &ProgressBar,
) -> anyhow::Result<ImportReport> {
    let (table, cols) = start(bytes, USER_COLUMNS)?;
    let mut orgs: HashMap<(OrgKind, String), Result<String, String>> = HashMap::new();
    let mut taken: HashMap<String, bool> = HashMap::new();
    for (_, cells) in &table.rows {
        let cell = |i: usize| {
            cols[i]
                .and_then(|c| cells.get(c))
                .map(String::as_str)
                .unwrap_or("")
        };
        if let Some(role) = parse_role(cell(2))
            && !cell(3).is_empty()
        {
            let key = (crate::model::org_kind(role), cell(3).to_owned());
            if let std::collections::hash_map::Entry::Vacant(slot) = orgs.entry(key.clone()) {
                slot.insert(resolve_org(db, key.0, &key.1).await?);
            }
        }
        if !cell(0).is_empty() && !taken.contains_key(cell(0)) {
            taken.insert(cell(0).to_owned(), db.username_taken(cell(0)).await?);
        }
    }
    let mut seen = Seen::default();
    let (good, errors) = check_rows(&table, &cols, progress, |row| {
        let username = row.text(0, 64);
        if let Some(u) = &username {
            if taken.get(u) == Some(&true) {
                row.fail(
                    0,
                    format!("用户名“{u}”已被使用"),
                    format!("username {u:?} is taken"),
                );
            } else if let Some(first) = seen.first(u, row.number) {
                row.fail(
                    0,
                    format!("与第 {first} 行重复"),
                    format!("repeats row {first}"),
                );
            }
        }
        let display_name = Some(row.get(1))
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let role = parse_role(row.get(2));
        if role.is_none() {
            row.fail(
                2,
                "角色应为 检查员、企业负责人、监管人员 或 机构管理员",
                "role must be inspector, enterprise_manager, supervisor or agency_admin",
            );
        }
        let org = row.text(3, 200);
        let org_id = match (role, &org) {
            (Some(role), Some(org)) => {
                match orgs.get(&(crate::model::org_kind(role), org.clone())) {
                    Some(Ok(id)) => Some(id.clone()),
                    Some(Err(why)) => {
                        row.fail_msg(3, why);
                        None
                    }
                    None => None,
                }
            }
            _ => None,
        };
        if let (Some(role), Some(id), Within::Organisation(kind, own)) = (role, &org_id, within)
            && (crate::model::org_kind(role) != *kind || id != own)
        {
            row.fail(
                3,
                "只能为本单位导入用户",
                "only users of your own organisation may be imported",
            );
        }
        let password = row.get(4).to_owned();
        if password.chars().count() < crate::admin::MIN_PASSWORD_CHARS {
            let n = crate::admin::MIN_PASSWORD_CHARS;
            row.fail(
                4,
                format!("密码至少 {n} 个字符"),
                format!("the password needs at least {n} characters"),
            );
        }
        let email = Some(row.get(5))
            .filter(|e| !e.is_empty())
            .map(str::to_owned);
        if let Some(e) = &email
            && crate::mail::check_address(e).is_err()
        {
            row.fail(
                5,
                format!("邮箱地址无效：{e}"),
                format!("not an email address: {e:?}"),
            );
        }
        let username = username?;
        Some((
            username.clone(),
            display_name.unwrap_or(username),
            role?,
            org_id?,
            (password, email),
        ))
    });
    finish(table.encoding, good, errors, |rows| async move {
        let mut users = Vec::with_capacity(rows.len());
        for (username, display_name, role, org_id, (password, email)) in rows {
            users.push(NewUser {
                password_hash: crate::auth::hash_password_blocking(password).await?,
                username,
                display_name,
                role,
                org_id,
                email,
            });
        }
        let keys: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
        let ids = db.create_users(&users, clock.now()).await?;
        Ok((ids, keys))
    })
    .await
}

const CONTRACT_COLUMNS: &[Wanted] = &[
    (
        "服务机构",
        &["服务机构", "机构", "机构名称", "agency"],
        true,
    ),
    (
        "企业",
        &["企业", "企业名称", "统一社会信用代码", "enterprise", "uscc"],
        true,
    ),
    (
        "起始日期",
        &[
            "起始日期",
            "开始日期",
            "生效日期",
            "starts_on",
            "start",
            "from",
        ],
        true,
    ),
    (
        "终止日期",
        &["终止日期", "结束日期", "到期日期", "ends_on", "end", "to"],
        true,
    ),
    (
        "已备案",
        &["已备案", "乡镇备案", "备案", "filed", "filed_with_township"],
        false,
    ),
];

/// A date as people type it: `2026-03-01`, `2026/3/1`, `2026.3.1` or `2026年3月1日`.
pub fn parse_date(s: &str) -> Option<Date> {
    let cleaned: String = s
        .trim()
        .replace(['年', '月', '/', '.'], "-")
        .replace('日', "");
    let mut parts = cleaned.split('-');
    let y: i16 = parts.next()?.trim().parse().ok()?;
    let m: i8 = parts.next()?.trim().parse().ok()?;
    let d: i8 = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() || !(1900..=2200).contains(&y) {
        return None;
    }
    Date::new(y, m, d).ok()
}

fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "" | "否" | "未备案" | "no" | "n" | "false" | "0" => Some(false),
        "是" | "已备案" | "yes" | "y" | "true" | "1" => Some(true),
        _ => None,
    }
}

/// Imports contracts: columns 服务机构 (id or name), 企业 (id, credit code or name), 起始日期,
/// 终止日期 and optionally 已备案 (是/否: filed with the township).
pub async fn contracts(
    db: &Db,
    clock: &dyn Clock,
    bytes: &[u8],
    within: &Within,
    progress: &ProgressBar,
) -> anyhow::Result<ImportReport> {
    let (table, cols) = start(bytes, CONTRACT_COLUMNS)?;
    let mut orgs: HashMap<(OrgKind, String), Result<String, String>> = HashMap::new();
    for (_, cells) in &table.rows {
        let cell = |i: usize| {
            cols[i]
                .and_then(|c| cells.get(c))
                .map(String::as_str)
                .unwrap_or("")
        };
        for (i, kind) in [(0, OrgKind::Agency), (1, OrgKind::Enterprise)] {
            let key = (kind, cell(i).to_owned());
            if key.1.is_empty() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = orgs.entry(key.clone()) {
                slot.insert(resolve_org(db, kind, &key.1).await?);
            }
        }
    }
    let (good, errors) = check_rows(&table, &cols, progress, |row| {
        let org = |row: &mut Row<'_>, i: usize, kind: OrgKind| {
            let text = row.text(i, 200)?;
            match orgs.get(&(kind, text)) {
                Some(Ok(id)) => Some(id.clone()),
                Some(Err(why)) => {
                    row.fail_msg(i, why);
                    None
                }
                None => None,
            }
        };
        let agency_id = org(row, 0, OrgKind::Agency);
        if let (Some(id), Within::Organisation(_, own)) = (&agency_id, within)
            && id != own
        {
            row.fail(
                0,
                "只能导入本机构的合同",
                "only your own agency's contracts may be imported",
            );
        }
        let enterprise_id = org(row, 1, OrgKind::Enterprise);
        let date = |row: &mut Row<'_>, i: usize| {
            let text = row.get(i);
            let d = parse_date(text);
            if d.is_none() {
                row.fail(
                    i,
                    format!("日期无效：“{text}”（应为 2026-03-01 这样的日期）"),
                    format!("not a date: {text:?} (write it as 2026-03-01)"),
                );
            }
            d
        };
        let starts_on = date(row, 2);
        let ends_on = date(row, 3);
        if let (Some(s), Some(e)) = (starts_on, ends_on)
            && e < s
        {
            row.fail(
                3,
                format!("终止日期早于起始日期 {s}"),
                format!("ends before it starts ({s})"),
            );
        }
        let filed = parse_yes_no(row.get(4));
        if filed.is_none() {
            row.fail(4, "应填“是”或“否”", "must be yes or no");
        }
        Some(NewContract {
            agency_id: agency_id?,
            enterprise_id: enterprise_id?,
            starts_on: starts_on?,
            ends_on: ends_on?,
            filed_with_township: filed?,
        })
    });
    finish(table.encoding, good, errors, |rows| async move {
        let keys: Vec<String> = rows
            .iter()
            .map(|c| format!("{} {}", c.agency_id, c.enterprise_id))
            .collect();
        let ids = db.create_contracts(&rows, clock.now()).await?;
        Ok((ids, keys))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_people_write_them() {
        let d = Date::new(2026, 3, 1).ok();
        for s in [
            "2026-03-01",
            "2026/3/1",
            "2026.3.1",
            "2026年3月1日",
            " 2026-3-01 ",
        ] {
            assert_eq!(parse_date(s), d, "{s}");
        }
        for s in ["2026-02-30", "26-3-1", "2026-03", "明天", "2026-03-01-02"] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn roles_by_stable_text_or_chinese_label() {
        for r in Role::ALL {
            assert_eq!(parse_role(r.as_str()), Some(r));
            assert_eq!(parse_role(r.label_zh()), Some(r));
        }
        assert_eq!(parse_role("admin"), None);
    }
}
