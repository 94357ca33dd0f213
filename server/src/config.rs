//! Server configuration and where each setting comes from.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment variables, command-line
//! flags. Clap already merges flags over environment variables (both land in [`Overrides`]); this module
//! lays the file under them and the defaults under the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

/// Everything the server needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; `None` means the SQLite file `<data_dir>/inspect.db`.
    pub database_url: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Largest request body a JSON route accepts.
    pub json_body_limit: usize,
    pub request_timeout: Duration,
    /// Time between passes of the read-model reconciler (`crate::reconcile`).
    pub reconcile_interval: Duration,
    /// A partial photo upload that received no byte for this long is discarded.
    pub upload_idle_expiry: Duration,
    /// Declared bytes of unfinished photo uploads one user may have begun; a new upload past
    /// it is refused (429) until some finish or expire.
    pub unfinished_upload_bytes_per_user: u64,
    /// How long after finding a major hazard the agency has to report it to the township
    /// (local rules: 2 hours); a later or missing report is flagged.
    pub major_report_window: Duration,
    /// Origins allowed by CORS; empty means no cross-origin access at all.
    pub cors_origins: Vec<String>,
    /// Most client connections served at once (lowered at start to what the process's
    /// descriptor limit allows); further connections are closed at once.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, counted from when it
    /// connected or its previous answer was sent: bounds slow headers and idle keep-alive alike.
    pub header_read_timeout: Duration,
    /// Addresses (besides 127.0.0.1 and ::1) whose health checks are still answered when every
    /// connection slot is taken, e.g. the load balancer's.
    pub health_check_from: Vec<std::net::IpAddr>,
    /// Wait before the first retry of a failed webhook delivery; doubled each time, at most an
    /// hour.
    pub webhook_retry_base: Duration,
    /// How often due webhook deliveries are looked for (not in the file: tests shorten it).
    pub webhook_poll_interval: Duration,
    /// A reminder is sent this many days before a rectification deadline.
    pub reminder_days: u32,
    /// The SMTP relay reminders are emailed through (`smtp://host:port`); none: no email.
    pub smtp_url: Option<String>,
    /// The sender address of reminder emails.
    pub smtp_from: String,
    /// The oldest phone SDK served; older apps are told to update (`crate::sdk`).
    pub min_sdk_version: crate::sdk::SdkVersion,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            json_body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(30),
            upload_idle_expiry: Duration::from_secs(7 * 24 * 60 * 60),
            unfinished_upload_bytes_per_user: 256 * 1024 * 1024,
            major_report_window: Duration::from_secs(2 * 60 * 60),
            cors_origins: Vec::new(),
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            health_check_from: Vec::new(),
            webhook_retry_base: Duration::from_secs(30),
            webhook_poll_interval: Duration::from_secs(1),
            reminder_days: 3,
            smtp_url: None,
            smtp_from: "inspect@localhost".to_owned(),
            min_sdk_version: crate::sdk::OLDEST_SUPPORTED,
        }
    }
}

/// Settings given by the TOML file or by environment/flags; each one present replaces the layer below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub access_token_ttl_secs: Option<u64>,
    pub refresh_token_ttl_secs: Option<u64>,
    pub json_body_limit_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub reconcile_interval_secs: Option<u64>,
    pub upload_idle_expiry_secs: Option<u64>,
    pub unfinished_upload_bytes_per_user: Option<u64>,
    pub major_report_window_secs: Option<u64>,
    pub cors_origins: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    pub header_read_timeout_secs: Option<u64>,
    pub health_check_from: Option<Vec<std::net::IpAddr>>,
    pub webhook_retry_secs: Option<u64>,
    pub reminder_days: Option<u32>,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    pub min_sdk_version: Option<crate::sdk::SdkVersion>,
}

impl Config {
    /// Applies `overrides` on top of `self`.
    pub fn apply(mut self, overrides: Overrides) -> Self {
        let Overrides {
            bind,
            data_dir,
            database_url,
            access_token_ttl_secs,
            refresh_token_ttl_secs,
            json_body_limit_bytes,
            request_timeout_secs,
            reconcile_interval_secs,
            upload_idle_expiry_secs,
            unfinished_upload_bytes_per_user,
            major_report_window_secs,
            cors_origins,
            max_connections,
            header_read_timeout_secs,
            health_check_from,
            webhook_retry_secs,
            reminder_days,
            smtp_url,
            smtp_from,
            min_sdk_version,
        } = overrides;
        if let Some(bind) = bind {
            self.bind = bind;
        }
        if let Some(data_dir) = data_dir {
            self.data_dir = data_dir;
        }
        if let Some(url) = database_url {
            self.database_url = Some(url);
        }
        if let Some(secs) = access_token_ttl_secs {
            self.access_token_ttl = Duration::from_secs(secs);
        }
        if let Some(secs) = refresh_token_ttl_secs {
            self.refresh_token_ttl = Duration::from_secs(secs);
        }
        if let Some(bytes) = json_body_limit_bytes {
            self.json_body_limit = bytes;
        }
        if let Some(secs) = request_timeout_secs {
            self.request_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = reconcile_interval_secs {
            self.reconcile_interval = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = upload_idle_expiry_secs {
            self.upload_idle_expiry = Duration::from_secs(secs.max(1));
        }
        if let Some(bytes) = unfinished_upload_bytes_per_user {
            self.unfinished_upload_bytes_per_user = bytes.max(1);
        }
        if let Some(secs) = major_report_window_secs {
            self.major_report_window = Duration::from_secs(secs.max(60));
        }
        if let Some(origins) = cors_origins {
            self.cors_origins = origins;
        }
        if let Some(n) = max_connections {
            self.max_connections = n.max(1);
        }
        if let Some(secs) = header_read_timeout_secs {
            self.header_read_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(addrs) = health_check_from {
            self.health_check_from = addrs;
        }
        if let Some(secs) = webhook_retry_secs {
            self.webhook_retry_base = Duration::from_secs(secs.max(1));
        }
        if let Some(days) = reminder_days {
            self.reminder_days = days.min(60);
        }
        if let Some(url) = smtp_url {
            self.smtp_url = Some(url).filter(|u| !u.is_empty());
        }
        if let Some(from) = smtp_from {
            self.smtp_from = from;
        }
        if let Some(version) = min_sdk_version {
            self.min_sdk_version = version;
        }
        self
    }

    /// Defaults, then the file at `file` if any, then `env_and_flags`.
    pub fn load(file: Option<&Path>, env_and_flags: Overrides) -> anyhow::Result<Self> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "读取配置文件失败 / cannot read config file {}",
                    path.display()
                )
            })?;
            config = config.apply(parse_toml(&text).with_context(|| {
                format!("配置文件无效 / invalid config file {}", path.display())
            })?);
        }
        Ok(config.apply(env_and_flags))
    }

    /// The database to use: the configured URL, or the SQLite file in the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("inspect.db").display()),
        }
    }
}

/// The configuration file with every key at its default, commented out (`server config`):
/// uncomment a line to change it. Each key is what [`Overrides`] reads; the test below keeps
/// the two in step.
pub fn default_toml() -> String {
    let d = Config::default();
    let list = |v: &[String]| {
        format!(
            "[{}]",
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let keys: Vec<(&str, &str, String)> = vec![
        (
            "bind",
            "监听地址 / address to listen on",
            format!("{:?}", d.bind.to_string()),
        ),
        (
            "data_dir",
            "数据目录（SQLite 文件与照片） / data directory (SQLite file and photos)",
            format!("{:?}", d.data_dir.display().to_string()),
        ),
        (
            "database_url",
            "数据库；不填则为 <data_dir>/inspect.db / database; unset means <data_dir>/inspect.db",
            "\"postgres://user@host/inspect\"".to_owned(),
        ),
        (
            "access_token_ttl_secs",
            "访问令牌有效期（秒） / access token lifetime (s)",
            d.access_token_ttl.as_secs().to_string(),
        ),
        (
            "refresh_token_ttl_secs",
            "刷新令牌有效期（秒） / refresh token lifetime (s)",
            d.refresh_token_ttl.as_secs().to_string(),
        ),
        (
            "json_body_limit_bytes",
            "JSON 请求体上限（字节） / largest JSON body (bytes)",
            d.json_body_limit.to_string(),
        ),
        (
            "request_timeout_secs",
            "请求超时（秒） / request timeout (s)",
            d.request_timeout.as_secs().to_string(),
        ),
        (
            "reconcile_interval_secs",
            "读模型校正间隔（秒） / read-model reconciler interval (s)",
            d.reconcile_interval.as_secs().to_string(),
        ),
        (
            "upload_idle_expiry_secs",
            "未完成上传的保留时间（秒） / unfinished uploads kept for (s)",
            d.upload_idle_expiry.as_secs().to_string(),
        ),
        (
            "unfinished_upload_bytes_per_user",
            "每个用户未完成上传的总字节上限 / unfinished upload bytes per user",
            d.unfinished_upload_bytes_per_user.to_string(),
        ),
        (
            "major_report_window_secs",
            "重大隐患上报时限（秒） / major hazard report window (s)",
            d.major_report_window.as_secs().to_string(),
        ),
        (
            "cors_origins",
            "允许跨域的来源 / origins allowed by CORS",
            list(&d.cors_origins),
        ),
        (
            "max_connections",
            "同时服务的连接数上限 / most connections served at once",
            d.max_connections.to_string(),
        ),
        (
            "header_read_timeout_secs",
            "请求头读取时限（秒） / time to send request headers (s)",
            d.header_read_timeout.as_secs().to_string(),
        ),
        (
            "health_check_from",
            "可在满载时访问 /healthz、可读取 /metrics 的地址 / addresses whose /healthz is answered when full and that may read /metrics",
            list(
                &d.health_check_from
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "webhook_retry_secs",
            "推送失败后首次重试的等待（秒），此后每次加倍，最长 1 小时 / first wait before a failed webhook is retried (s), doubled each time, at most an hour",
            d.webhook_retry_base.as_secs().to_string(),
        ),
        (
            "reminder_days",
            "整改期限前几天提醒 / days before a deadline to remind",
            d.reminder_days.to_string(),
        ),
        (
            "smtp_url",
            "发送提醒邮件的 SMTP 服务器；不填则不发邮件 / SMTP relay for reminder emails; unset means none",
            "\"smtp://mail.example.cn:25\"".to_owned(),
        ),
        (
            "smtp_from",
            "提醒邮件的发件人 / sender of reminder emails",
            format!("{:?}", d.smtp_from),
        ),
        (
            "min_sdk_version",
            "可连接的最旧手机 SDK 版本，更旧的应用会被提示更新 / oldest phone SDK served; older apps are told to update",
            format!("\"{}\"", d.min_sdk_version),
        ),
    ];
    let mut out = String::from(
        "# 巡检平台服务端配置 / inspection platform server configuration\n\
         # 优先级：命令行参数 > 环境变量 > 本文件 > 默认值 / precedence: flags > environment > this file > defaults\n\
         # 去掉行首的 # 即可修改 / remove the leading # to change a value\n",
    );
    for (key, help, value) in keys {
        out.push_str(&format!("\n# {help}\n# {key} = {value}\n"));
    }
    out
}

/// Parses the TOML form of [`Overrides`] (same keys as its fields).
pub fn parse_toml(text: &str) -> anyhow::Result<Overrides> {
    Ok(toml::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment_win_over_the_file_which_wins_over_defaults() {
        let file = parse_toml(
            "bind = \"0.0.0.0:9000\"\ndata_dir = \"/srv/inspect\"\naccess_token_ttl_secs = 60\n",
        )
        .expect("valid toml");
        let flags = Overrides {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 9999))),
            ..Overrides::default()
        };
        let config = Config::default().apply(file).apply(flags);
        assert_eq!(config.bind, SocketAddr::from(([127, 0, 0, 1], 9999)));
        assert_eq!(config.data_dir, PathBuf::from("/srv/inspect"));
        assert_eq!(config.access_token_ttl, Duration::from_secs(60));
        assert_eq!(
            config.refresh_token_ttl,
            Config::default().refresh_token_ttl
        );
    }

    #[test]
    fn the_printed_defaults_name_every_key_and_read_back_as_the_defaults() {
        let text = default_toml();
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let o = parse_toml(&uncommented).expect("the printed file parses");
        let Overrides {
            bind,
            data_dir,
            database_url,
            access_token_ttl_secs,
            refresh_token_ttl_secs,
            json_body_limit_bytes,
            request_timeout_secs,
            reconcile_interval_secs,
            upload_idle_expiry_secs,
            unfinished_upload_bytes_per_user,
            major_report_window_secs,
            cors_origins,
            max_connections,
            header_read_timeout_secs,
            health_check_from,
            webhook_retry_secs,
            reminder_days,
            smtp_url,
            smtp_from,
            min_sdk_version,
        } = o.clone();
        // Every key is in the file (a key added to `Overrides` and not to it fails here).
        assert!(bind.is_some() && data_dir.is_some() && database_url.is_some());
        assert!(access_token_ttl_secs.is_some() && refresh_token_ttl_secs.is_some());
        assert!(json_body_limit_bytes.is_some() && request_timeout_secs.is_some());
        assert!(reconcile_interval_secs.is_some() && upload_idle_expiry_secs.is_some());
        assert!(unfinished_upload_bytes_per_user.is_some() && major_report_window_secs.is_some());
        assert!(cors_origins.is_some() && max_connections.is_some());
        assert!(header_read_timeout_secs.is_some() && health_check_from.is_some());
        assert!(webhook_retry_secs.is_some() && reminder_days.is_some());
        assert!(smtp_url.is_some() && smtp_from.is_some() && min_sdk_version.is_some());
        // And its values are the defaults (the database and SMTP URLs are examples).
        let applied = Config::default().apply(Overrides {
            database_url: None,
            smtp_url: None,
            ..o
        });
        assert_eq!(applied, Config::default());
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        assert!(parse_toml("bnid = \"0.0.0.0:1\"").is_err());
    }

    #[test]
    fn the_default_database_is_a_file_in_the_data_dir() {
        let config = Config {
            data_dir: PathBuf::from("/tmp/x"),
            ..Config::default()
        };
        assert_eq!(
            config.effective_database_url(),
            "sqlite:///tmp/x/inspect.db"
        );
    }
}
