//! Queries on organisations, users, contracts, devices and tokens.

use jiff::Timestamp;
use jiff::civil::Date;

use super::plan::{Arg, Plan};
use super::retry::with_pool_retry;
use super::{Db, DbError, DbResult, with_pool};
use crate::clock::{from_millis, to_millis};
use crate::model::{OrgKind, Role, Uscc};

/// An enterprise to insert; `park`, if any, must be one of its township's parks.
#[derive(Debug, Clone)]
pub struct NewEnterprise {
    pub name: String,
    pub uscc: Uscc,
    pub address: String,
    pub township_id: String,
    pub industry: String,
    pub park: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    pub uscc: String,
    pub address: String,
    pub township_id: String,
    pub industry: String,
    pub park: Option<String>,
}

/// A user to insert; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub org_id: String,
    /// Where reminders are emailed (`crate::mail`), if anywhere.
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub org_id: String,
    pub created_at: Timestamp,
}

/// A query of users' rows: the columns `UserRow` reads, then `$rest`.
macro_rules! user_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, username, display_name, password_hash, role, org_id, created_at FROM users ",
            $rest
        )
    };
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    display_name: String,
    password_hash: String,
    role: String,
    org_id: String,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            role: row
                .role
                .parse()
                .map_err(|e| DbError::Corrupt(format!("users.role of {}: {e}", row.id)))?,
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            password_hash: row.password_hash,
            org_id: row.org_id,
            created_at: from_millis(row.created_at),
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewContract {
    pub agency_id: String,
    pub enterprise_id: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub filed_with_township: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub id: String,
    pub agency_id: String,
    pub enterprise_id: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub filed_with_township: bool,
}

#[derive(Debug, Clone)]
pub struct NewDevice {
    pub user_id: String,
    pub name: String,
    pub platform: String,
    /// 16 random bytes, lowercase hex.
    pub actor_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub platform: String,
    pub actor_id: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: String,
    user_id: String,
    name: String,
    platform: String,
    actor_id: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<DeviceRow> for Device {
    fn from(row: DeviceRow) -> Self {
        Device {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            platform: row.platform,
            actor_id: row.actor_id,
            created_at: from_millis(row.created_at),
            revoked_at: row.revoked_at.map(from_millis),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewToken {
    /// SHA-256 of the token, lowercase hex.
    pub hash: String,
    pub kind: TokenKind,
    pub session_id: String,
    pub user_id: String,
    pub device_id: Option<String>,
    pub expires_at: Timestamp,
}

/// A stored token with what authentication needs to know about its user and device.
#[derive(Debug, Clone)]
pub struct AuthTokenRow {
    pub kind: TokenKind,
    pub session_id: String,
    pub user_id: String,
    pub device_id: Option<String>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub role: Role,
    pub org_id: String,
    pub device_revoked_at: Option<Timestamp>,
    /// The Automerge actor id of the token's device, when the device is the token user's own.
    pub device_actor_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AuthTokenSqlRow {
    kind: String,
    session_id: String,
    user_id: String,
    device_id: Option<String>,
    expires_at: i64,
    revoked_at: Option<i64>,
    role: String,
    org_id: String,
    device_revoked_at: Option<i64>,
    device_actor_id: Option<String>,
}

impl TryFrom<AuthTokenSqlRow> for AuthTokenRow {
    type Error = DbError;

    fn try_from(row: AuthTokenSqlRow) -> Result<Self, Self::Error> {
        let kind = match row.kind.as_str() {
            "access" => TokenKind::Access,
            "refresh" => TokenKind::Refresh,
            other => return Err(DbError::Corrupt(format!("tokens.kind {other:?}"))),
        };
        Ok(AuthTokenRow {
            kind,
            role: row
                .role
                .parse()
                .map_err(|e| DbError::Corrupt(format!("users.role of {}: {e}", row.user_id)))?,
            session_id: row.session_id,
            user_id: row.user_id,
            device_id: row.device_id,
            expires_at: from_millis(row.expires_at),
            revoked_at: row.revoked_at.map(from_millis),
            org_id: row.org_id,
            device_revoked_at: row.device_revoked_at.map(from_millis),
            device_actor_id: row.device_actor_id,
        })
    }
}

/// Which enterprises a user may see, as the database evaluates it (see [`crate::scope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRule {
    /// Enterprises with a contract with this agency whose term includes `today`, or, with
    /// `or_ended`, one that started by `today` and has ended (what a former agency may still
    /// read of its own records).
    ContractedWith {
        agency_id: String,
        today: Date,
        or_ended: bool,
    },
    /// Just this enterprise.
    Enterprise { enterprise_id: String },
    /// The enterprises of this township.
    Township { township_id: String },
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The text a scope query compares to `'ended'` to admit contracts that have ended.
fn ended(or_ended: bool) -> &'static str {
    if or_ended { "ended" } else { "active" }
}

fn iso(date: Date) -> String {
    date.to_string()
}

/// Inserts one token within a transaction; a macro because the executor type differs per backend.
macro_rules! insert_token {
    ($executor:expr, $token:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO tokens (hash, kind, session_id, user_id, device_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&$token.hash)
        .bind($token.kind.as_str())
        .bind(&$token.session_id)
        .bind(&$token.user_id)
        .bind(&$token.device_id)
        .bind(to_millis($now))
        .bind(to_millis($token.expires_at))
        .execute($executor)
        .await
    };
}

impl Db {
    /// Creates a township with its industrial parks; returns its id.
    pub async fn create_township(
        &self,
        name: &str,
        parks: &[String],
        now: Timestamp,
    ) -> DbResult<String> {
        let id = new_id();
        with_pool_retry!(self, "accounts", pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO organisations (id, kind, name, created_at) VALUES ($1, 'township', $2, $3)")
                .bind(&id)
                .bind(name)
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await?;
            for park in parks {
                sqlx::query("INSERT INTO township_parks (township_id, name) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(park)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(id)
    }

    /// Creates an agency; returns its id.
    pub async fn create_agency(&self, name: &str, now: Timestamp) -> DbResult<String> {
        let id = new_id();
        with_pool_retry!(self, "accounts", pool => {
            sqlx::query("INSERT INTO organisations (id, kind, name, created_at) VALUES ($1, 'agency', $2, $3)")
                .bind(&id)
                .bind(name)
                .bind(to_millis(now))
                .execute(pool)
                .await?;
        });
        Ok(id)
    }

    /// Creates an enterprise; returns its id.
    pub async fn create_enterprise(
        &self,
        enterprise: &NewEnterprise,
        now: Timestamp,
    ) -> DbResult<String> {
        let mut ids = self
            .create_enterprises(std::slice::from_ref(enterprise), now)
            .await?;
        ids.pop()
            .ok_or_else(|| DbError::Corrupt("no id for a created enterprise".into()))
    }

    /// The kind of the organisation `id`, if it exists.
    pub async fn organisation_kind(&self, id: &str) -> DbResult<Option<OrgKind>> {
        let kind: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT kind FROM organisations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        kind.map(|k| {
            k.parse()
                .map_err(|e| DbError::Corrupt(format!("organisations.kind: {e}")))
        })
        .transpose()
    }

    /// The id of the township called `name`, if any.
    pub async fn township_id_by_name(&self, name: &str) -> DbResult<Option<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM organisations WHERE kind = 'township' AND name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Whether `township_id` has a park called `park`.
    pub async fn township_has_park(&self, township_id: &str, park: &str) -> DbResult<bool> {
        let found: Option<i32> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT 1 FROM township_parks WHERE township_id = $1 AND name = $2")
                .bind(township_id)
                .bind(park)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    /// Whether an enterprise with this code exists.
    pub async fn enterprise_id_by_uscc(&self, uscc: &Uscc) -> DbResult<Option<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM enterprises WHERE uscc = $1")
                .bind(uscc.as_str())
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn enterprise_by_id(&self, id: &str) -> DbResult<Option<Enterprise>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT e.id, o.name, e.uscc, e.address, e.township_id, e.industry, e.park \
                 FROM enterprises e JOIN organisations o ON o.id = e.id WHERE e.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Creates a user; the caller has checked that the organisation is of the kind the role needs (the
    /// database checks it again). Returns the user id.
    pub async fn create_user(&self, user: &NewUser, now: Timestamp) -> DbResult<String> {
        let mut ids = self.create_users(std::slice::from_ref(user), now).await?;
        ids.pop()
            .ok_or_else(|| DbError::Corrupt("no id for a created user".into()))
    }

    pub async fn user_by_username(&self, username: &str) -> DbResult<Option<User>> {
        let row: Option<UserRow> = with_pool!(self, pool => {
            sqlx::query_as(
                user_select!("WHERE username = $1"),
            )
            .bind(username)
            .fetch_optional(pool)
            .await?
        });
        row.map(User::try_from).transpose()
    }

    /// The users of one organisation (agency, enterprise or township), by display name.
    pub async fn users_of_org(&self, org_id: &str) -> DbResult<Vec<User>> {
        let rows: Vec<UserRow> = with_pool!(self, pool => {
            sqlx::query_as(
                user_select!("WHERE org_id = $1 ORDER BY display_name, id"),
            )
            .bind(org_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(User::try_from).collect()
    }

    pub async fn user_by_id(&self, id: &str) -> DbResult<Option<User>> {
        let row: Option<UserRow> = with_pool!(self, pool => {
            sqlx::query_as(
                user_select!("WHERE id = $1"),
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(User::try_from).transpose()
    }

    /// Records a service contract; returns its id.
    pub async fn create_contract(
        &self,
        contract: &NewContract,
        now: Timestamp,
    ) -> DbResult<String> {
        let mut ids = self
            .create_contracts(std::slice::from_ref(contract), now)
            .await?;
        ids.pop()
            .ok_or_else(|| DbError::Corrupt("no id for a created contract".into()))
    }

    /// Enrols a device; returns its id.
    pub async fn create_device(&self, device: &NewDevice, now: Timestamp) -> DbResult<String> {
        let id = new_id();
        with_pool_retry!(self, "accounts", pool => {
            sqlx::query(
                "INSERT INTO devices (id, user_id, name, platform, actor_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(&device.user_id)
            .bind(&device.name)
            .bind(&device.platform)
            .bind(&device.actor_id)
            .bind(to_millis(now))
            .execute(pool)
            .await?;
        });
        Ok(id)
    }

    pub async fn device_by_id(&self, id: &str) -> DbResult<Option<Device>> {
        let row: Option<DeviceRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, user_id, name, platform, actor_id, created_at, revoked_at \
                 FROM devices WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Device::from))
    }

    /// The devices of a user, oldest first, revoked ones included.
    pub async fn devices_of_user(&self, user_id: &str) -> DbResult<Vec<Device>> {
        let rows: Vec<DeviceRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, user_id, name, platform, actor_id, created_at, revoked_at \
                 FROM devices WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Device::from).collect())
    }

    /// Revokes a device and every token bound to it. Revoking twice keeps the first time.
    pub async fn revoke_device(&self, device_id: &str, now: Timestamp) -> DbResult<()> {
        let now = to_millis(now);
        with_pool_retry!(self, "accounts", pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(device_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(device_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores newly issued tokens.
    pub async fn insert_tokens(&self, tokens: &[NewToken], now: Timestamp) -> DbResult<()> {
        with_pool_retry!(self, "accounts", pool => {
            let mut tx = pool.begin().await?;
            for token in tokens {
                insert_token!(&mut *tx, token, now)?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Looks a token up by its hash, with its user's role and organisation and its device's state.
    pub async fn token_by_hash(&self, hash: &str) -> DbResult<Option<AuthTokenRow>> {
        const SQL: &str = "SELECT t.kind, t.session_id, t.user_id, t.device_id, t.expires_at, t.revoked_at, \
                u.role, u.org_id, d.revoked_at AS device_revoked_at, \
                CASE WHEN d.user_id = t.user_id THEN d.actor_id END AS device_actor_id \
         FROM tokens t \
         JOIN users u ON u.id = t.user_id \
         LEFT JOIN devices d ON d.id = t.device_id \
         WHERE t.hash = $1 AND u.disabled_at IS NULL";
        let row: Option<AuthTokenSqlRow> = match self {
            // Every authenticated request asks this: a point read on the calling thread.
            Db::Sqlite(sqlite) => sqlite.inline.read(|c| {
                use rusqlite::OptionalExtension as _;
                c.prepare_cached(SQL)?
                    .query_row([hash], |r| {
                        Ok(AuthTokenSqlRow {
                            kind: r.get(0)?,
                            session_id: r.get(1)?,
                            user_id: r.get(2)?,
                            device_id: r.get(3)?,
                            expires_at: r.get(4)?,
                            revoked_at: r.get(5)?,
                            role: r.get(6)?,
                            org_id: r.get(7)?,
                            device_revoked_at: r.get(8)?,
                            device_actor_id: r.get(9)?,
                        })
                    })
                    .optional()
            })?,
            Db::Postgres(pool) => sqlx::query_as(SQL).bind(hash).fetch_optional(pool).await?,
        };
        row.map(AuthTokenRow::try_from).transpose()
    }

    /// Revokes every live token of a session (logout, or refresh-token reuse).
    pub async fn revoke_session(&self, session_id: &str, now: Timestamp) -> DbResult<()> {
        with_pool_retry!(self, "accounts", pool => {
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL")
                .bind(to_millis(now))
                .bind(session_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Atomically spends the refresh token `old_hash` and stores `replacements` in the same session.
    ///
    /// Returns `false`, writing nothing, if the token was already spent or revoked: of two concurrent
    /// refreshes with one token, exactly one wins.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        session_id: &str,
        replacements: &[NewToken],
        now: Timestamp,
    ) -> DbResult<bool> {
        let millis = to_millis(now);
        Ok(with_pool_retry!(self, "accounts", pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE tokens SET revoked_at = $1 \
                 WHERE hash = $2 AND kind = 'refresh' AND revoked_at IS NULL AND expires_at > $1",
            )
            .bind(millis)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if claimed {
                // One live pair per session: the access token issued with the spent refresh token goes too.
                sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL")
                    .bind(millis)
                    .bind(session_id)
                    .execute(&mut *tx)
                    .await?;
                for token in replacements {
                    insert_token!(&mut *tx, token, now)?;
                }
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            claimed
        }))
    }

    /// The enterprises `rule` admits, sorted by id, each with the township it is registered in.
    pub async fn scope_townships(&self, rule: &ScopeRule) -> DbResult<Vec<(String, String)>> {
        const CONTRACTED: &str = "SELECT DISTINCT c.enterprise_id, e.township_id FROM contracts c \
             JOIN enterprises e ON e.id = c.enterprise_id \
             WHERE c.agency_id = $1 AND c.starts_on <= $2 AND (c.ends_on >= $2 OR $3 = 'ended') \
             ORDER BY c.enterprise_id";
        const ENTERPRISE: &str = "SELECT id, township_id FROM enterprises WHERE id = $1";
        const TOWNSHIP: &str =
            "SELECT id, township_id FROM enterprises WHERE township_id = $1 ORDER BY id";
        let (sql, args): (&'static str, Vec<String>) = match rule {
            ScopeRule::ContractedWith {
                agency_id,
                today,
                or_ended,
            } => (
                CONTRACTED,
                vec![agency_id.clone(), iso(*today), ended(*or_ended).to_owned()],
            ),
            ScopeRule::Enterprise { enterprise_id } => (ENTERPRISE, vec![enterprise_id.clone()]),
            ScopeRule::Township { township_id } => (TOWNSHIP, vec![township_id.clone()]),
        };
        Ok(match self {
            // Every sync asks this; an index range of one organisation's enterprises, read on
            // the calling thread (see `inline`).
            Db::Sqlite(sqlite) => sqlite.inline.read(|c| {
                c.prepare_cached(sql)?
                    .query_map(rusqlite::params_from_iter(&args), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<(String, String)>>>()
            })?,
            Db::Postgres(pool) => {
                let mut q = sqlx::query_as::<_, (String, String)>(sql);
                for a in args {
                    q = q.bind(a);
                }
                q.fetch_all(pool).await?
            }
        })
    }

    /// Whether `rule` admits the enterprise `enterprise_id`, without listing the others.
    pub async fn scope_admits(&self, rule: &ScopeRule, enterprise_id: &str) -> DbResult<bool> {
        let found: Option<i32> = with_pool!(self, pool => {
            match rule {
                ScopeRule::ContractedWith { agency_id, today, or_ended } => {
                    sqlx::query_scalar(
                        "SELECT 1 FROM contracts WHERE agency_id = $1 AND enterprise_id = $2 \
                         AND starts_on <= $3 AND (ends_on >= $3 OR $4 = 'ended') LIMIT 1",
                    )
                    .bind(agency_id)
                    .bind(enterprise_id)
                    .bind(iso(*today))
                    .bind(ended(*or_ended))
                    .fetch_optional(pool)
                    .await?
                }
                ScopeRule::Enterprise { enterprise_id: own } => {
                    sqlx::query_scalar("SELECT 1 FROM enterprises WHERE id = $1 AND id = $2")
                        .bind(own)
                        .bind(enterprise_id)
                        .fetch_optional(pool)
                        .await?
                }
                ScopeRule::Township { township_id } => {
                    sqlx::query_scalar("SELECT 1 FROM enterprises WHERE township_id = $1 AND id = $2")
                        .bind(township_id)
                        .bind(enterprise_id)
                        .fetch_optional(pool)
                        .await?
                }
            }
        });
        Ok(found.is_some())
    }

    /// The enterprises `rule` admits, by name.
    pub async fn scope_enterprises(&self, rule: &ScopeRule) -> DbResult<Vec<Enterprise>> {
        Ok(with_pool!(self, pool => {
            match rule {
                ScopeRule::ContractedWith { agency_id, today, or_ended } => {
                    sqlx::query_as(
                        "SELECT e.id, o.name, e.uscc, e.address, e.township_id, e.industry, e.park \
                         FROM enterprises e JOIN organisations o ON o.id = e.id \
                         WHERE e.id IN (SELECT enterprise_id FROM contracts \
                                        WHERE agency_id = $1 AND starts_on <= $2 AND (ends_on >= $2 OR $3 = 'ended')) \
                         ORDER BY o.name, e.id",
                    )
                    .bind(agency_id)
                    .bind(iso(*today))
                    .bind(ended(*or_ended))
                    .fetch_all(pool)
                    .await?
                }
                ScopeRule::Enterprise { enterprise_id } => {
                    sqlx::query_as(
                        "SELECT e.id, o.name, e.uscc, e.address, e.township_id, e.industry, e.park \
                         FROM enterprises e JOIN organisations o ON o.id = e.id WHERE e.id = $1",
                    )
                    .bind(enterprise_id)
                    .fetch_all(pool)
                    .await?
                }
                ScopeRule::Township { township_id } => {
                    sqlx::query_as(
                        "SELECT e.id, o.name, e.uscc, e.address, e.township_id, e.industry, e.park \
                         FROM enterprises e JOIN organisations o ON o.id = e.id \
                         WHERE e.township_id = $1 ORDER BY o.name, e.id",
                    )
                    .bind(township_id)
                    .fetch_all(pool)
                    .await?
                }
            }
        }))
    }
}

/// Bulk inserts for the importers ([`crate::import`]): all rows in one transaction, or none.
impl Db {
    /// Creates every enterprise, or none; returns their ids in order.
    pub async fn create_enterprises(
        &self,
        enterprises: &[NewEnterprise],
        now: Timestamp,
    ) -> DbResult<Vec<String>> {
        let ids: Vec<String> = enterprises.iter().map(|_| new_id()).collect();
        with_pool_retry!(self, "import", pool => {
            let mut tx = pool.begin().await?;
            for (id, e) in ids.iter().zip(enterprises) {
                sqlx::query("INSERT INTO organisations (id, kind, name, created_at) VALUES ($1, 'enterprise', $2, $3)")
                    .bind(id)
                    .bind(&e.name)
                    .bind(to_millis(now))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO enterprises (id, uscc, address, township_id, industry, park) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(e.uscc.as_str())
                .bind(&e.address)
                .bind(&e.township_id)
                .bind(&e.industry)
                .bind(&e.park)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(ids)
    }

    /// Creates every user, or none; returns their ids in order.
    pub async fn create_users(&self, users: &[NewUser], now: Timestamp) -> DbResult<Vec<String>> {
        let ids: Vec<String> = users.iter().map(|_| new_id()).collect();
        with_pool_retry!(self, "import", pool => {
            let mut tx = pool.begin().await?;
            for (id, u) in ids.iter().zip(users) {
                sqlx::query(
                    "INSERT INTO users (id, username, display_name, password_hash, role, org_id, org_kind, created_at, email) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(id)
                .bind(&u.username)
                .bind(&u.display_name)
                .bind(&u.password_hash)
                .bind(u.role.as_str())
                .bind(&u.org_id)
                .bind(crate::model::org_kind(u.role).as_str())
                .bind(to_millis(now))
                .bind(&u.email)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(ids)
    }

    /// Records every contract, or none; returns their ids in order.
    pub async fn create_contracts(
        &self,
        contracts: &[NewContract],
        now: Timestamp,
    ) -> DbResult<Vec<String>> {
        let ids: Vec<String> = contracts.iter().map(|_| new_id()).collect();
        with_pool_retry!(self, "import", pool => {
            let mut tx = pool.begin().await?;
            for (id, c) in ids.iter().zip(contracts) {
                sqlx::query(
                    "INSERT INTO contracts (id, agency_id, enterprise_id, starts_on, ends_on, filed_with_township, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(&c.agency_id)
                .bind(&c.enterprise_id)
                .bind(iso(c.starts_on))
                .bind(iso(c.ends_on))
                .bind(c.filed_with_township)
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(ids)
    }

    /// The ids of the organisations of `kind` named `name` (agency and enterprise names need
    /// not be unique: the importer refuses an ambiguous name).
    pub async fn organisations_named(&self, kind: OrgKind, name: &str) -> DbResult<Vec<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM organisations WHERE kind = $1 AND name = $2 ORDER BY id LIMIT 3")
                .bind(kind.as_str())
                .bind(name)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Whether user `id` is disabled.
    pub async fn user_disabled(&self, id: &str) -> DbResult<bool> {
        let at: Option<Option<i64>> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT disabled_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(at.flatten().is_some())
    }

    /// Whether a user named `username` exists.
    pub async fn username_taken(&self, username: &str) -> DbResult<bool> {
        Ok(self.user_by_username(username).await?.is_some())
    }
}

/// A user as an administrator sees it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub org_id: String,
    pub email: Option<String>,
    pub disabled_at: Option<i64>,
}

/// A row of `users` as [`Db::list_users`] reads it.
type UserTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
);

impl Db {
    /// The users of `org_id`, or of every organisation, by organisation and username.
    pub async fn list_users(&self, org_id: Option<&str>) -> DbResult<Vec<UserSummary>> {
        let rows: Vec<UserTuple> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, username, display_name, role, org_id, email, disabled_at FROM users \
                 WHERE ($1 IS NULL OR org_id = $1) ORDER BY org_id, username",
            )
            .bind(org_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, username, display_name, role, org_id, email, disabled_at)| UserSummary {
                    id,
                    username,
                    display_name,
                    role,
                    org_id,
                    email,
                    disabled_at,
                },
            )
            .collect())
    }

    /// Disables user `id` at `at_ms` (ending its sessions then), or enables it (`None`).
    pub async fn set_user_disabled(&self, id: &str, at_ms: Option<i64>) -> DbResult<()> {
        let mut plan = Plan::default();
        plan.push(
            "UPDATE users SET disabled_at = $2 WHERE id = $1",
            vec![Arg::from(id), Arg::from(at_ms)],
        );
        if let Some(at) = at_ms {
            plan.push(
                "UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                vec![Arg::from(id), Arg::from(at)],
            );
        }
        plan.run(self).await
    }

    /// Sets user `id`'s password hash and ends its sessions at `now_ms`.
    pub async fn set_user_password(&self, id: &str, hash: String, now_ms: i64) -> DbResult<()> {
        let mut plan = Plan::default();
        plan.push(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            vec![Arg::from(id), Arg::from(hash)],
        );
        plan.push(
            "UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            vec![Arg::from(id), Arg::from(now_ms)],
        );
        plan.run(self).await
    }
}
