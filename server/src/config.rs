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
