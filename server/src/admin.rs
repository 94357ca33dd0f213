//! Administrative operations run from the command line (`server admin ...`): creating organisations,
//! users and contracts (bulk imports are in [`crate::import`]). Each returns the created id(s) so that the
//! CLI can print them for scripts; errors are bilingual because operators read them.

use anyhow::{Context as _, bail};
use jiff::civil::Date;

use crate::auth::hash_password_blocking;
use crate::clock::Clock;
use crate::db::{Db, DbError, NewContract, NewEnterprise, NewUser};
use crate::model::{OrgKind, Role, Uscc};

fn conflict_or(error: DbError, zh: &str, en: &str) -> anyhow::Error {
    match error {
        DbError::Conflict(_) => anyhow::anyhow!("{zh} / {en}"),
        other => anyhow::Error::new(other),
    }
}

fn non_empty(field: &str, value: &str) -> anyhow::Result<String> {
    let value = value.trim();
    if value.is_empty() {
        bail!("{field} 不能为空 / {field} must not be empty");
    }
    Ok(value.to_owned())
}

/// Creates a township (乡镇/街道/开发区) with the names of its industrial parks.
pub async fn create_township(
    db: &Db,
    clock: &dyn Clock,
    name: &str,
    parks: &[String],
) -> anyhow::Result<String> {
    let name = non_empty("name", name)?;
    let parks: Vec<String> = parks
        .iter()
        .map(|park| non_empty("park", park))
        .collect::<anyhow::Result<_>>()?;
    db.create_township(&name, &parks, clock.now())
        .await
        .map_err(|e| {
            conflict_or(
                e,
                &format!("乡镇“{name}”已存在，或园区名称重复"),
                &format!("township {name:?} exists already, or a park name is repeated"),
            )
        })
}

/// Creates a third-party safety service agency.
pub async fn create_agency(db: &Db, clock: &dyn Clock, name: &str) -> anyhow::Result<String> {
    let name = non_empty("name", name)?;
    Ok(db.create_agency(&name, clock.now()).await?)
}

/// Finds a township by id or, failing that, by name.
pub async fn resolve_township(db: &Db, id_or_name: &str) -> anyhow::Result<String> {
    if db.organisation_kind(id_or_name).await? == Some(OrgKind::Township) {
        return Ok(id_or_name.to_owned());
    }
    db.township_id_by_name(id_or_name.trim())
        .await?
        .with_context(|| format!("乡镇“{id_or_name}”不存在 / no township {id_or_name:?}"))
}

/// An enterprise as given by an operator, before validation.
#[derive(Debug, Clone, Default)]
pub struct EnterpriseInput {
    pub name: String,
    pub uscc: String,
    pub address: String,
    /// Township id or name.
    pub township: String,
    pub industry: String,
    pub park: Option<String>,
}

/// Validates and creates one enterprise.
pub async fn create_enterprise(
    db: &Db,
    clock: &dyn Clock,
    input: &EnterpriseInput,
) -> anyhow::Result<String> {
    let township_id = resolve_township(db, &input.township).await?;
    let enterprise = validate_enterprise(input, township_id)?;
    if let Some(park) = &enterprise.park
        && !db.township_has_park(&enterprise.township_id, park).await?
    {
        bail!(
            "乡镇“{}”没有园区“{park}” / township {:?} has no park {park:?}",
            input.township,
            input.township
        );
    }
    insert_enterprise(db, clock, &enterprise).await
}

fn validate_enterprise(
    input: &EnterpriseInput,
    township_id: String,
) -> anyhow::Result<NewEnterprise> {
    Ok(NewEnterprise {
        name: non_empty("name", &input.name)?,
        uscc: Uscc::parse(&input.uscc)?,
        address: non_empty("address", &input.address)?,
        township_id,
        industry: non_empty("industry", &input.industry)?,
        park: input
            .park
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    })
}

async fn insert_enterprise(
    db: &Db,
    clock: &dyn Clock,
    enterprise: &NewEnterprise,
) -> anyhow::Result<String> {
    db.create_enterprise(enterprise, clock.now())
        .await
        .map_err(|e| {
            conflict_or(
                e,
                &format!("统一社会信用代码 {} 已登记", enterprise.uscc),
                &format!("an enterprise with code {} exists already", enterprise.uscc),
            )
        })
}

/// A user as given by an operator.
#[derive(Debug, Clone)]
pub struct UserInput {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub org_id: String,
    pub display_name: Option<String>,
}

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Creates a user after checking that the organisation is the kind the role belongs to.
pub async fn create_user(db: &Db, clock: &dyn Clock, input: &UserInput) -> anyhow::Result<String> {
    let username = non_empty("username", &input.username)?;
    if input.password.chars().count() < MIN_PASSWORD_CHARS {
        bail!(
            "密码至少 {MIN_PASSWORD_CHARS} 个字符 / the password needs at least {MIN_PASSWORD_CHARS} characters"
        );
    }
    let needed = crate::model::org_kind(input.role);
    match db.organisation_kind(&input.org_id).await? {
        None => bail!(
            "组织 {} 不存在 / no organisation {}",
            input.org_id,
            input.org_id
        ),
        Some(kind) if kind != needed => bail!(
            "角色 {} 须属于{}，而组织 {} 是{} / role {} needs an organisation of kind {needed}, but {} is of kind {kind}",
            input.role,
            needed.zh(),
            input.org_id,
            kind.zh(),
            input.role,
            input.org_id,
        ),
        Some(_) => {}
    }
    let password_hash = hash_password_blocking(input.password.clone()).await?;
    let display_name = input
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(&username)
        .to_owned();
    db.create_user(
        &NewUser {
            username: username.clone(),
            display_name,
            password_hash,
            role: input.role,
            org_id: input.org_id.clone(),
            email: None,
        },
        clock.now(),
    )
    .await
    .map_err(|e| {
        conflict_or(
            e,
            &format!("用户名“{username}”已被使用"),
            &format!("username {username:?} is taken"),
        )
    })
}

/// Records a service contract between an agency and an enterprise (id or unified social credit code).
pub async fn create_contract(
    db: &Db,
    clock: &dyn Clock,
    agency_id: &str,
    enterprise: &str,
    starts_on: Date,
    ends_on: Date,
    filed_with_township: bool,
) -> anyhow::Result<String> {
    if ends_on < starts_on {
        bail!(
            "合同终止日期早于起始日期 / the contract ends ({ends_on}) before it starts ({starts_on})"
        );
    }
    if db.organisation_kind(agency_id).await? != Some(OrgKind::Agency) {
        bail!("服务机构 {agency_id} 不存在 / no agency {agency_id}");
    }
    let enterprise_id = if db.organisation_kind(enterprise).await? == Some(OrgKind::Enterprise) {
        enterprise.to_owned()
    } else {
        let by_code = match Uscc::parse(enterprise) {
            Ok(code) => db.enterprise_id_by_uscc(&code).await?,
            Err(_) => None,
        };
        by_code.with_context(|| format!("企业 {enterprise} 不存在 / no enterprise {enterprise}"))?
    };
    Ok(db
        .create_contract(
            &NewContract {
                agency_id: agency_id.to_owned(),
                enterprise_id,
                starts_on,
                ends_on,
                filed_with_township,
            },
            clock.now(),
        )
        .await?)
}
