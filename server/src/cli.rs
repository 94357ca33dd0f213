//! The `server` command line: `serve` (the default) and `admin ...`.
//!
//! Settings flags are global so they can be given before or after the subcommand; each also reads an
//! environment variable, and clap gives the flag precedence over the variable. The TOML file and the
//! defaults sit below both (see [`crate::config`]).

use std::io::{BufRead as _, IsTerminal as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Overrides};
use crate::model::Role;
use crate::{admin, db::Db};

#[derive(Debug, Parser)]
#[command(
    name = "server",
    version,
    about = "安全生产第三方服务巡检平台服务端 / field inspection platform server"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// TOML configuration file (keys as in `Overrides`: bind, data_dir, database_url, ...).
    #[arg(long, env = "INSPECT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "INSPECT_BIND", global = true)]
    pub bind: Option<SocketAddr>,
    /// Directory for the SQLite database and other files [default: ./data].
    #[arg(long, env = "INSPECT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite:...` or `postgres://...` [default: sqlite file <data-dir>/inspect.db].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Lifetime of access tokens in seconds [default: 900].
    #[arg(long, env = "INSPECT_ACCESS_TOKEN_TTL_SECS", global = true)]
    pub access_token_ttl_secs: Option<u64>,
    /// Lifetime of refresh tokens in seconds [default: 2592000, 30 days].
    #[arg(long, env = "INSPECT_REFRESH_TOKEN_TTL_SECS", global = true)]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Largest JSON request body in bytes [default: 1048576].
    #[arg(long, env = "INSPECT_JSON_BODY_LIMIT_BYTES", global = true)]
    pub json_body_limit_bytes: Option<usize>,
    /// Request timeout in seconds [default: 30].
    #[arg(long, env = "INSPECT_REQUEST_TIMEOUT_SECS", global = true)]
    pub request_timeout_secs: Option<u64>,
    /// Seconds between passes of the reconciler, which projects again every document whose
    /// read model is behind it [default: 30].
    #[arg(long, env = "INSPECT_RECONCILE_INTERVAL_SECS", global = true)]
    pub reconcile_interval_secs: Option<u64>,
    /// Seconds after which a partial photo upload that received nothing is discarded
    /// [default: 604800, 7 days].
    #[arg(long, env = "INSPECT_UPLOAD_IDLE_EXPIRY_SECS", global = true)]
    pub upload_idle_expiry_secs: Option<u64>,
    /// Declared bytes of unfinished photo uploads one user may have begun; further new uploads
    /// are refused until some finish or expire [default: 268435456, 256 MiB].
    #[arg(long, env = "INSPECT_UNFINISHED_UPLOAD_BYTES_PER_USER", global = true)]
    pub unfinished_upload_bytes_per_user: Option<u64>,
    /// Seconds the agency has to report a major hazard to the township after finding it; a later
    /// or missing report is flagged [default: 7200, 2 hours].
    #[arg(long, env = "INSPECT_MAJOR_REPORT_WINDOW_SECS", global = true)]
    pub major_report_window_secs: Option<u64>,
    /// Origins allowed by CORS, comma-separated [default: none, CORS closed].
    #[arg(
        long = "cors-origin",
        env = "INSPECT_CORS_ORIGINS",
        global = true,
        value_delimiter = ','
    )]
    pub cors_origins: Option<Vec<String>>,
    /// Most client connections served at once; more are closed at once [default: 1024, lowered
    /// to what the descriptor limit allows].
    #[arg(long, env = "INSPECT_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Seconds a connection has to send a request's headers, and that an idle keep-alive
    /// connection is kept [default: 10].
    #[arg(long, env = "INSPECT_HEADER_READ_TIMEOUT_SECS", global = true)]
    pub header_read_timeout_secs: Option<u64>,
    /// Addresses besides 127.0.0.1 and ::1 whose `/healthz` is answered even when every connection slot
    /// is taken, comma-separated (e.g. the load balancer's) [default: none].
    #[arg(
        long = "health-check-from",
        env = "INSPECT_HEALTH_CHECK_FROM",
        global = true,
        value_delimiter = ','
    )]
    pub health_check_from: Option<Vec<std::net::IpAddr>>,
    /// Log lines as `text` (plain; coloured only on a terminal) or `json` (one object per line,
    /// for log collectors) [default: text].
    #[arg(long, env = "INSPECT_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds before the first retry of a failed webhook delivery, doubled each time up to an
    /// hour [default: 30].
    #[arg(long, env = "INSPECT_WEBHOOK_RETRY_SECS", global = true)]
    pub webhook_retry_secs: Option<u64>,
    /// Days before a rectification deadline that a reminder is sent [default: 3].
    #[arg(long, env = "INSPECT_REMINDER_DAYS", global = true)]
    pub reminder_days: Option<u32>,
    /// SMTP relay for reminder emails, `smtp://host:port` (plain SMTP on a trusted network)
    /// [default: none, no email].
    #[arg(long, env = "INSPECT_SMTP_URL", global = true)]
    pub smtp_url: Option<String>,
    /// Sender address of reminder emails [default: inspect@localhost].
    #[arg(long, env = "INSPECT_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// Oldest phone SDK version served, `major.minor.patch`; older apps are told to update
    /// [default: 0.1.0].
    #[arg(long, env = "INSPECT_MIN_SDK_VERSION", global = true)]
    pub min_sdk_version: Option<crate::sdk::SdkVersion>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl SettingsArgs {
    /// Defaults, then the file, then environment and flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        Config::load(
            self.config.as_deref(),
            Overrides {
                bind: self.bind,
                data_dir: self.data_dir.clone(),
                database_url: self.database_url.clone(),
                access_token_ttl_secs: self.access_token_ttl_secs,
                refresh_token_ttl_secs: self.refresh_token_ttl_secs,
                json_body_limit_bytes: self.json_body_limit_bytes,
                request_timeout_secs: self.request_timeout_secs,
                reconcile_interval_secs: self.reconcile_interval_secs,
                upload_idle_expiry_secs: self.upload_idle_expiry_secs,
                unfinished_upload_bytes_per_user: self.unfinished_upload_bytes_per_user,
                major_report_window_secs: self.major_report_window_secs,
                cors_origins: self.cors_origins.clone(),
                max_connections: self.max_connections,
                header_read_timeout_secs: self.header_read_timeout_secs,
                health_check_from: self.health_check_from.clone(),
                webhook_retry_secs: self.webhook_retry_secs,
                reminder_days: self.reminder_days,
                smtp_url: self.smtp_url.clone(),
                min_sdk_version: self.min_sdk_version,
                smtp_from: self.smtp_from.clone(),
            },
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Administrative tasks on the database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Fill the database with demo data (once), print the demo logins, then serve.
    Demo,
    /// Print the configuration file with every setting at its default, commented out.
    Config,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Back up the SQLite database to a new file while the server may be running and writing
    /// (SQLite's online backup API: one consistent snapshot); the copy is integrity-checked.
    Backup {
        /// The backup file to create (must not exist).
        dest: PathBuf,
        /// Also copy the photos the directory lacks, into this directory.
        #[arg(long)]
        photos: Option<PathBuf>,
    },
    /// Replace the SQLite database with a backup (the server must be stopped). The database
    /// replaced is kept beside it as `inspect.db.before-restore-<time>`.
    Restore {
        /// A file made by `server admin backup`.
        backup: PathBuf,
        /// Also copy back the photos of this directory (made by `backup --photos`).
        #[arg(long)]
        photos: Option<PathBuf>,
    },
    /// Drop every read model (lists, dashboard) and project every document again from the
    /// change log.
    RebuildProjections,
    /// Register a webhook for an organisation (township, agency or enterprise): every hazard
    /// event and reminder concerning it is POSTed there, signed. Prints `<id>\t<secret>`; the
    /// secret is shown only now.
    AddWebhook {
        #[arg(long)]
        org: String,
        #[arg(long)]
        url: String,
    },
    /// Stop a webhook; its pending deliveries are given up.
    DisableWebhook { id: String },
    /// List users (of one organisation with `--org`): id, username, name, role, organisation,
    /// email, and whether disabled.
    ListUsers {
        #[arg(long)]
        org: Option<String>,
    },
    /// Disable a user: no login, and every session ends now.
    DisableUser {
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled user again.
    EnableUser {
        #[arg(long)]
        username: String,
    },
    /// Set a user's password (`-` reads it from standard input); every session ends now.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
    },
    /// Set the email address reminders go to (`--email ""` removes it).
    SetEmail {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Create a township (乡镇/街道/开发区); prints its id.
    CreateTownship {
        #[arg(long)]
        name: String,
        /// An industrial park in the township; repeat for several.
        #[arg(long = "park")]
        parks: Vec<String>,
    },
    /// Create a safety service agency; prints its id.
    CreateAgency {
        #[arg(long)]
        name: String,
    },
    /// Create an enterprise; prints its id.
    CreateEnterprise {
        #[arg(long)]
        name: String,
        /// Unified social credit code (统一社会信用代码), 18 characters.
        #[arg(long)]
        uscc: String,
        #[arg(long)]
        address: String,
        /// Township id or name.
        #[arg(long)]
        township: String,
        #[arg(long)]
        industry: String,
        /// Industrial park, one of the township's.
        #[arg(long)]
        park: Option<String>,
    },
    /// Create a user; prints its id.
    CreateUser {
        #[arg(long)]
        username: String,
        /// The password, or `-` to read it from the first line of standard input.
        #[arg(long)]
        password: String,
        /// inspector, enterprise_manager, supervisor or agency_admin.
        #[arg(long)]
        role: Role,
        /// Organisation id: an agency for inspector and agency_admin, an enterprise for
        /// enterprise_manager, a township for supervisor.
        #[arg(long)]
        org: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Record a service contract; prints its id.
    CreateContract {
        /// Agency id.
        #[arg(long)]
        agency: String,
        /// Enterprise id or unified social credit code.
        #[arg(long)]
        enterprise: String,
        /// First day of the term, YYYY-MM-DD (China Standard Time).
        #[arg(long)]
        start: Date,
        /// Last day of the term, inclusive.
        #[arg(long)]
        end: Date,
        /// The contract has been filed (报备) with the township.
        #[arg(long)]
        filed: bool,
    },
    /// Import enterprises from a CSV file (UTF-8 with or without BOM, GBK, GB18030) or an Excel
    /// workbook with a header row naming the columns 企业名称, 统一社会信用代码, 地址, 乡镇, 行业
    /// and optionally 园区 (or name, uscc, address, township, industry, park). Every row is checked
    /// first: if any is refused, each problem is printed with its row and column, nothing is stored
    /// and the exit status is 1; otherwise all rows are stored and `<id>\t<code>` is printed per row.
    ImportEnterprises { file: PathBuf },
    /// Import users the same way: 用户名, 姓名, 角色, 所属单位 (id or name), 初始密码.
    ImportUsers { file: PathBuf },
    /// Import contracts the same way: 服务机构, 企业 (id, credit code or name), 起始日期,
    /// 终止日期, 已备案 (是/否).
    ImportContracts { file: PathBuf },
}

/// Parses the command line and runs it.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.settings.log_format.unwrap_or(LogFormat::Text));
    match dispatch(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("错误 / error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // Logs go to stderr so that admin commands keep stdout for the ids they print. Colour
    // codes only on a terminal: in a file or a collector they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.settings.load()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await.map(|()| ExitCode::SUCCESS),
        Command::Admin(command) => run_admin(config, command).await,
        Command::Demo => demo(config).await.map(|()| ExitCode::SUCCESS),
        Command::Config => {
            print!("{}", crate::config::default_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    // One server process per SQLite file (it is the file's only writer); restore waits for it.
    let _lock = match crate::backup::sqlite_path(&config.effective_database_url()) {
        Ok(file) => {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            Some(crate::backup::hold_server_lock(&file)?)
        }
        Err(_) => None,
    };
    let state = crate::build_state(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("无法监听 {bind} / cannot listen on {bind}"))?;
    let address = listener.local_addr().context("listener address")?;
    println!("服务已启动 / listening on http://{address}");
    println!(
        "登录 / log in: 用 `server admin create-user` 创建账号，或运行 `server demo` 生成演示数据和账号 / create accounts with `server admin create-user`, or run `server demo` for demo data and logins"
    );
    tracing::info!(%address, backend = state.db.backend_name(), "listening");
    let db = state.db.clone();
    let optimizer = crate::db::spawn_optimizer(db.clone(), std::time::Duration::from_secs(3600));
    let served = crate::serve(listener, state, crate::shutdown_signal()).await;
    optimizer.abort();
    served?;
    db.close().await;
    println!("服务已停止 / stopped");
    Ok(())
}

async fn demo(config: Config) -> anyhow::Result<()> {
    let state = crate::build_state(config.clone()).await?;
    match crate::demo::fill(&state).await {
        Ok(()) => eprintln!("演示数据已生成 / demo data generated"),
        Err(e) => eprintln!("{e:#}"),
    }
    crate::demo::print_logins(&format!("http://{}", config.bind));
    drop(state);
    serve(config).await
}

async fn open_db(config: &Config) -> anyhow::Result<Db> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "创建数据目录失败 / cannot create data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    Db::connect(&config.effective_database_url()).await
}

async fn run_admin(config: Config, command: AdminCommand) -> anyhow::Result<ExitCode> {
    // These work on the file itself, without opening it as the server does.
    match &command {
        AdminCommand::Backup { dest, photos } => {
            let source = crate::backup::sqlite_path(&config.effective_database_url())?;
            let (dest, photos, store) =
                (dest.clone(), photos.clone(), config.data_dir.join("photos"));
            let report = tokio::task::spawn_blocking(move || {
                let mut report = crate::backup::backup_sqlite(&source, &dest)?;
                if let Some(dir) = photos {
                    report.photo_files = crate::backup::copy_photos(&store, &dir)?;
                }
                Ok::<_, anyhow::Error>(report)
            })
            .await??;
            println!("{}", report.path.display());
            eprintln!(
                "备份完成：{} 字节，{} 条变更（至序号 {}），复制照片文件 {} 个 / backed up {} bytes, {} changes (up to seq {}), {} photo files copied",
                report.bytes,
                report.changes,
                report.max_seq,
                report.photo_files,
                report.bytes,
                report.changes,
                report.max_seq,
                report.photo_files
            );
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::Restore { backup, photos } => {
            let target = crate::backup::sqlite_path(&config.effective_database_url())?;
            let (backup, photos, store) = (
                backup.clone(),
                photos.clone(),
                config.data_dir.join("photos"),
            );
            let now = SystemClock.now();
            let (kept, copied) = tokio::task::spawn_blocking(move || {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let kept = crate::backup::restore_sqlite(&backup, &target, now)?;
                let copied = match photos {
                    Some(dir) => crate::backup::copy_photos(&dir, &store)?,
                    None => 0,
                };
                Ok::<_, anyhow::Error>((kept, copied))
            })
            .await??;
            if let Some(old) = kept {
                eprintln!(
                    "原数据库保留在 / the replaced database is kept at {}",
                    old.display()
                );
            }
            eprintln!(
                "恢复完成，照片文件 {copied} 个 / restored; {copied} photo files copied back"
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let db = open_db(&config).await?;
    let clock = SystemClock;
    let result = admin_command(&db, &clock, command).await;
    db.close().await;
    result
}

async fn admin_command(
    db: &Db,
    clock: &dyn Clock,
    command: AdminCommand,
) -> anyhow::Result<ExitCode> {
    let created = |what_zh: &str, what_en: &str, id: String| {
        eprintln!("已创建{what_zh} / {what_en} created");
        println!("{id}");
        ExitCode::SUCCESS
    };
    Ok(match command {
        AdminCommand::CreateTownship { name, parks } => created(
            "乡镇",
            "township",
            admin::create_township(db, clock, &name, &parks).await?,
        ),
        AdminCommand::CreateAgency { name } => created(
            "服务机构",
            "agency",
            admin::create_agency(db, clock, &name).await?,
        ),
        AdminCommand::CreateEnterprise {
            name,
            uscc,
            address,
            township,
            industry,
            park,
        } => {
            let input = admin::EnterpriseInput {
                name,
                uscc,
                address,
                township,
                industry,
                park,
            };
            created(
                "企业",
                "enterprise",
                admin::create_enterprise(db, clock, &input).await?,
            )
        }
        AdminCommand::CreateUser {
            username,
            password,
            role,
            org,
            display_name,
        } => {
            let password = if password == "-" {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("读取密码失败 / cannot read the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                password
            };
            let input = admin::UserInput {
                username,
                password,
                role,
                org_id: org,
                display_name,
            };
            created("用户", "user", admin::create_user(db, clock, &input).await?)
        }
        AdminCommand::CreateContract {
            agency,
            enterprise,
            start,
            end,
            filed,
        } => created(
            "合同",
            "contract",
            admin::create_contract(db, clock, &agency, &enterprise, start, end, filed).await?,
        ),
        AdminCommand::ImportEnterprises { file } => {
            run_import(db, clock, &file, crate::import::Kind::Enterprises).await?
        }
        AdminCommand::AddWebhook { org, url } => {
            let (id, secret) = crate::webhooks::register(db, clock.now(), &org, &url).await?;
            println!("{id}\t{secret}");
            eprintln!(
                "推送地址已登记，密钥只显示这一次 / webhook registered; the secret is shown only now"
            );
            ExitCode::SUCCESS
        }
        AdminCommand::ListUsers { org } => {
            for u in crate::users::list(db, org.as_deref()).await? {
                let disabled = if u.disabled_at.is_some() {
                    "已停用/disabled"
                } else {
                    ""
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{disabled}",
                    u.id,
                    u.username,
                    u.display_name,
                    u.role,
                    u.org_id,
                    u.email.unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        AdminCommand::DisableUser { username } => {
            let id = crate::users::id_of(db, &username).await?;
            crate::users::set_disabled(db, &id, Some(clock.now())).await?;
            eprintln!(
                "已停用 {username}，其登录已全部失效 / {username} disabled; every session ended"
            );
            ExitCode::SUCCESS
        }
        AdminCommand::EnableUser { username } => {
            let id = crate::users::id_of(db, &username).await?;
            crate::users::set_disabled(db, &id, None).await?;
            eprintln!("已启用 {username} / {username} enabled");
            ExitCode::SUCCESS
        }
        AdminCommand::ResetPassword { username, password } => {
            let password = if password == "-" {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("读取密码失败 / cannot read the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                password
            };
            let id = crate::users::id_of(db, &username).await?;
            crate::users::reset_password(db, &id, password, clock.now()).await?;
            eprintln!("密码已重置，原登录已失效 / password reset; every session ended");
            ExitCode::SUCCESS
        }
        AdminCommand::SetEmail { username, email } => {
            let email = Some(email.trim()).filter(|e| !e.is_empty());
            crate::mail::set_email(db, &username, email).await?;
            eprintln!("邮箱已更新 / email updated");
            ExitCode::SUCCESS
        }
        AdminCommand::DisableWebhook { id } => {
            crate::webhooks::disable(db, clock.now(), &id).await?;
            eprintln!("推送已停用 / webhook disabled");
            ExitCode::SUCCESS
        }
        AdminCommand::RebuildProjections => {
            let n = crate::projection::rebuild(db, crate::clock::to_millis(clock.now())).await?;
            eprintln!("已重建 {n} 个文档的读模型 / projected {n} documents again");
            ExitCode::SUCCESS
        }
        AdminCommand::Backup { .. } | AdminCommand::Restore { .. } => {
            unreachable!("handled before the database is opened")
        }
        AdminCommand::ImportUsers { file } => {
            run_import(db, clock, &file, crate::import::Kind::Users).await?
        }
        AdminCommand::ImportContracts { file } => {
            run_import(db, clock, &file, crate::import::Kind::Contracts).await?
        }
    })
}

/// Reads `path`, runs one importer with a progress bar on a terminal, prints what it stored
/// (stdout) or every problem (stderr).
async fn run_import(
    db: &Db,
    clock: &dyn Clock,
    path: &std::path::Path,
    kind: crate::import::Kind,
) -> anyhow::Result<ExitCode> {
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "无法打开 {} / cannot open {}",
            path.display(),
            path.display()
        )
    })?;
    if meta.len() > crate::table::MAX_FILE_BYTES as u64 {
        anyhow::bail!(crate::table::TableError::TooLarge {
            max: crate::table::MAX_FILE_BYTES
        });
    }
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "无法读取 {} / cannot read {}",
            path.display(),
            path.display()
        )
    })?;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} 行 / rows {elapsed}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = crate::import::import(
        kind,
        db,
        clock,
        &bytes,
        &crate::import::Within::Anything,
        &progress,
    )
    .await?;
    for row in &report.imported {
        println!("{}\t{}", row.id, row.key);
    }
    for error in &report.errors {
        eprintln!("{error}");
    }
    let (what_zh, what_en) = kind.labels();
    if report.errors.is_empty() {
        eprintln!(
            "已导入 {} {what_zh}（{}） / imported {} {what_en} ({})",
            report.imported.len(),
            report.encoding,
            report.imported.len(),
            report.encoding
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} 处错误，未导入任何数据，请修改后重新导入 / {} problems: nothing was imported; fix the file and import it again",
            report.errors.len(),
            report.errors.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
