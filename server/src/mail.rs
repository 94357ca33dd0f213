//! Reminders by email over SMTP, when `smtp_url` is configured (ADR 0013).
//!
//! The reminders time derives ([`crate::webhooks::derive_timed`]) get one `email_deliveries`
//! row per user with an address in the hazard's enterprise, agency and township; the webhook
//! loop sends them through a plain SMTP relay (the organisation's mail server or a local
//! relay; no TLS and no authentication here, so the relay must be on a trusted network),
//! retried like webhooks. The message is UTF-8 text, Chinese first, base64-encoded, with the
//! subject encoded as RFC 2047 asks.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::clock::to_millis;
use crate::db::plan::{Arg, Plan};
use crate::db::{Db, DbError, DbResult, with_pool};

/// Each SMTP exchange must answer within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts before an email is given up.
const MAX_ATTEMPTS: i64 = 20;

/// Deliveries of the reminders a pass created (at `$1`) to the users of the hazard's
/// organisations who have an address.
pub const FAN_OUT_EMAIL: &str = "INSERT INTO email_deliveries (hazard_id, event_id, user_id, next_attempt_at) \
     SELECT e.hazard_id, e.event_id, u.id, e.created_at FROM webhook_events e \
     JOIN users u ON u.org_id IN (e.enterprise_id, e.agency_id, e.township_id) \
     WHERE e.created_at = $1 AND u.email IS NOT NULL AND u.email <> '' \
     AND (e.kind LIKE 'reminder.%' OR e.kind IN ('hazard.overdue', 'major_hazard.report_late')) \
     ON CONFLICT DO NOTHING";

/// An SMTP relay to send through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailer {
    pub host: String,
    pub port: u16,
    /// The sender address.
    pub from: String,
}

/// Why an email could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("SMTP server timed out")]
    Timeout,
    #[error("SMTP server refused: {0}")]
    Refused(String),
}

impl Mailer {
    /// From `smtp://host[:port]` (port 25 by default) and the sender address.
    pub fn from_url(url: &str, from: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("邮件服务器地址无效 / bad smtp_url {url:?}: {e}"))?;
        if parsed.scheme() != "smtp" {
            anyhow::bail!("邮件服务器地址须以 smtp:// 开头 / smtp_url must start with smtp://");
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("smtp_url has no host"))?
            .trim_matches(['[', ']'])
            .to_owned();
        check_address(from)?;
        Ok(Self {
            host,
            port: parsed.port().unwrap_or(25),
            from: from.to_owned(),
        })
    }

    /// Sends one message.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let stream = tokio::time::timeout(
            STEP_TIMEOUT,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| MailError::Timeout)??;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        async fn reply(
            read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        ) -> Result<String, MailError> {
            // A reply is one or more lines `NNN-text`, the last `NNN text`.
            let mut all = String::new();
            loop {
                let mut line = String::new();
                let n = tokio::time::timeout(STEP_TIMEOUT, read.read_line(&mut line))
                    .await
                    .map_err(|_| MailError::Timeout)??;
                if n == 0 {
                    return Err(MailError::Refused("connection closed".into()));
                }
                if line.len() > 1000 || all.len() > 16_000 {
                    return Err(MailError::Refused("reply too long".into()));
                }
                all.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(all);
                }
            }
        }
        async fn expect(
            read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
            code: &str,
        ) -> Result<(), MailError> {
            let r = reply(read).await?;
            if r.starts_with(code) {
                Ok(())
            } else {
                Err(MailError::Refused(r.trim().chars().take(200).collect()))
            }
        }
        expect(&mut read, "220").await?;
        let mut say = async |line: String, code: &str| -> Result<(), MailError> {
            tokio::time::timeout(STEP_TIMEOUT, write.write_all(line.as_bytes()))
                .await
                .map_err(|_| MailError::Timeout)??;
            expect(&mut read, code).await
        };
        say("EHLO inspect.local\r\n".into(), "250").await?;
        say(format!("MAIL FROM:<{}>\r\n", self.from), "250").await?;
        say(format!("RCPT TO:<{to}>\r\n"), "25").await?;
        say("DATA\r\n".into(), "354").await?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let encoded = b64.encode(body.as_bytes());
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        let message = format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: =?UTF-8?B?{subject}?=\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n.\r\n",
            from = self.from,
            subject = b64.encode(subject.as_bytes()),
            body = wrapped.join("\r\n"),
        );
        say(message, "250").await?;
        let _ = say("QUIT\r\n".into(), "221").await;
        Ok(())
    }
}

/// An address as far as SMTP needs it: one `@`, no spaces, brackets or line breaks.
pub fn check_address(address: &str) -> anyhow::Result<()> {
    let ok = address.len() <= 254
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if ok {
        Ok(())
    } else {
        anyhow::bail!("邮箱地址无效：{address:?} / not an email address: {address:?}")
    }
}

/// Sets (or with `None` clears) the email address of user `username`.
pub async fn set_email(db: &Db, username: &str, email: Option<&str>) -> anyhow::Result<()> {
    if let Some(e) = email {
        check_address(e)?;
    }
    if db.user_by_username(username).await?.is_none() {
        anyhow::bail!("用户“{username}”不存在 / no user {username:?}");
    }
    let mut plan = Plan::default();
    plan.push(
        "UPDATE users SET email = $2 WHERE username = $1",
        vec![Arg::from(username), Arg::from(email)],
    );
    plan.run(db).await?;
    Ok(())
}

type DueRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
);

/// Sends every email due at `now`; returns how many were sent.
pub async fn send_due(
    db: &Db,
    mailer: &Mailer,
    now: jiff::Timestamp,
    retry_base: Duration,
) -> DbResult<usize> {
    let now_ms = to_millis(now);
    let rows: Vec<DueRow> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT d.hazard_id, d.event_id, d.user_id, d.attempts, d.next_attempt_at, u.email, e.kind, \
             COALESCE(h.description, ''), COALESCE(o.name, ''), e.detail \
             FROM email_deliveries d JOIN users u ON u.id = d.user_id \
             JOIN webhook_events e ON e.hazard_id = d.hazard_id AND e.event_id = d.event_id \
             LEFT JOIN hazards_view h ON h.id = d.hazard_id \
             LEFT JOIN organisations o ON o.id = e.enterprise_id \
             WHERE d.sent_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= $1 \
             ORDER BY d.next_attempt_at LIMIT 32",
        )
        .bind(now_ms)
        .fetch_all(pool)
        .await
        .map_err(DbError::from)?
    });
    let mut sent = 0;
    for (
        hazard_id,
        event_id,
        user_id,
        attempts,
        next,
        email,
        kind,
        description,
        enterprise,
        detail,
    ) in rows
    {
        let key = || {
            vec![
                Arg::from(&hazard_id),
                Arg::from(&event_id),
                Arg::from(&user_id),
            ]
        };
        // Claimed as webhooks are: another instance that read the row finds it changed.
        let mut args = key();
        args.extend([Arg::from(now_ms + 60_000), Arg::from(next)]);
        let claimed = crate::db::plan::execute_counted(
            db,
            "UPDATE email_deliveries SET next_attempt_at = $4 \
             WHERE hazard_id = $1 AND event_id = $2 AND user_id = $3 AND next_attempt_at = $5 \
             AND sent_at IS NULL AND failed_at IS NULL",
            args,
        )
        .await?;
        if claimed == 0 {
            continue;
        }
        let label = crate::webhooks::kind_label(&kind);
        let subject = format!("【安全生产隐患整改】{label}");
        let deadline = serde_json::from_str::<serde_json::Value>(&detail)
            .ok()
            .and_then(|d| {
                d.get("deadline")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .map(|d| format!("整改期限 / deadline: {d}\n"))
            .unwrap_or_default();
        let body = format!(
            "{label}\n\n企业 / enterprise: {enterprise}\n隐患 / hazard: {description}\n{deadline}编号 / id: {hazard_id}\n\n\
             此邮件由巡检平台自动发送 / sent by the inspection platform"
        );
        let outcome = mailer.send(&email, &subject, &body).await;
        let mut plan = Plan::default();
        let mut args = key();
        match outcome {
            Ok(()) => {
                args.extend([Arg::from(attempts + 1), Arg::from(now_ms)]);
                plan.push(
                    "UPDATE email_deliveries SET attempts = $4, sent_at = $5, last_error = NULL \
                     WHERE hazard_id = $1 AND event_id = $2 AND user_id = $3",
                    args,
                );
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reminder email not sent");
                let attempts = attempts + 1;
                let wait = crate::webhooks::backoff(retry_base, attempts);
                args.extend([
                    Arg::from(attempts),
                    Arg::from(now_ms + wait.as_millis() as i64),
                    Arg::from(e.to_string()),
                    Arg::from((attempts >= MAX_ATTEMPTS).then_some(now_ms)),
                ]);
                plan.push(
                    "UPDATE email_deliveries SET attempts = $4, next_attempt_at = $5, last_error = $6, failed_at = $7 \
                     WHERE hazard_id = $1 AND event_id = $2 AND user_id = $3",
                    args,
                );
            }
        }
        plan.run(db).await?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_could_inject_smtp_commands_are_refused() {
        assert!(check_address("zhang.san@example.cn").is_ok());
        for bad in [
            "no-at",
            "a@b@c",
            "@x",
            "x@",
            "a b@c",
            "a@b\r\nRCPT TO:<evil@x>",
            "<a@b>",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_relay_is_an_smtp_url() {
        let m = Mailer::from_url("smtp://127.0.0.1:2525", "inspect@example.cn").unwrap();
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 2525));
        assert_eq!(
            Mailer::from_url("smtp://mail.example.cn", "a@b")
                .unwrap()
                .port,
            25
        );
        assert!(Mailer::from_url("http://x", "a@b").is_err());
        assert!(Mailer::from_url("smtp://x", "not an address").is_err());
    }
}
