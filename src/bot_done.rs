//! Cloud BOT's "BOT done" webhook (cloudbot-api.md §3.9, third-party sourced) for runs started
//! outside AWS: the subscribed URL, its path token, and what is taken from a delivery. The
//! receiver's flow is `service/bot_done.rs`; the story and the answers: docs/events.md, "Runs
//! started outside AWS".
//!
//! A subscription's URL is `<callback base>/bot-done/<public_id>/<bot_id>/<token>`. The webhook
//! is unsigned, so the token is what makes a random POST cost nothing: it is HMAC-SHA256 of the
//! BOT under the contract's secret key, checked against the cached credentials before any Cloud
//! BOT call, and it needs no record of its own (the CLI computes the same value when it
//! subscribes). The token is a secret: never logged, and redacted in `Debug`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::cloudbot::{ApiBase, BotEndpoint, BotId, Credentials, JobEndpoint, JobId, PublicId};

/// The path segment after the callback base that names a BOT-done delivery.
pub const PATH_SEGMENT: &str = "bot-done";

/// Length of a token: 32 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 43;

/// What the HMAC covers besides the BOT, so the tag serves this purpose only.
const TOKEN_DOMAIN: &str = "cloudbot-trigger bot-done v1";

fn message(public_id: &PublicId, bot_id: &BotId) -> String {
    format!("{TOKEN_DOMAIN}\n{}/{}", public_id.as_str(), bot_id.as_str())
}

/// The path token of `bot` under `credentials` (the contract's).
pub fn path_token(credentials: &Credentials, public_id: &PublicId, bot_id: &BotId) -> String {
    credentials
        .keyed_digest(message(public_id, bot_id).as_bytes())
        .map(|tag| URL_SAFE_NO_PAD.encode(tag))
        .unwrap_or_default()
}

/// The prefix of every URL this stack subscribes for `bot`: `<callback base>/bot-done/<public_id>/<bot_id>/`
/// (how the CLI recognises its own subscriptions, whatever their token).
pub fn url_prefix(callback_base: &str, bot: &BotEndpoint) -> String {
    format!(
        "{}/{PATH_SEGMENT}/{}/{}/",
        callback_base.trim_end_matches('/'),
        bot.public_id().as_str(),
        bot.bot_id().as_str()
    )
}

/// The URL to subscribe for `bot`, with its path token (a secret: show it redacted).
pub fn webhook_url(callback_base: &str, bot: &BotEndpoint, credentials: &Credentials) -> String {
    format!(
        "{}{}",
        url_prefix(callback_base, bot),
        path_token(credentials, bot.public_id(), bot.bot_id())
    )
}

/// `url` with the token after `prefix` (or any query) replaced by `***`, for output.
pub fn redacted(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match url.find(&format!("/{PATH_SEGMENT}/")) {
        Some(at) => {
            let tail = &url[at..];
            match tail.rsplit_once('/') {
                Some((head, _)) => format!("{}{head}/***", &url[..at]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// A path token as received: checked for shape only; its value never appears in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PathToken(Vec<u8>);

impl PathToken {
    /// The token of a path segment, `None` when it does not have a token's shape.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != TOKEN_CHARS {
            return None;
        }
        URL_SAFE_NO_PAD.decode(raw).ok().map(Self)
    }
}

impl fmt::Debug for PathToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A BOT-done delivery: the BOT from the path, its token, and the job the body names, on the
/// configured API base (a URL in the body is never followed).
#[derive(Debug, Clone)]
pub struct BotDone {
    /// The subscribed BOT (from the path).
    pub bot: BotEndpoint,
    /// The path token; `None` when the segment has no token's shape (ignored without a look).
    pub token: Option<PathToken>,
    /// The job the body names, under the path's contract.
    pub job: JobEndpoint,
    /// The BOT id the body names, when it names one.
    pub body_bot_id: Option<String>,
}

impl BotDone {
    /// Whether the token is the one this contract's `credentials` give the BOT.
    pub fn token_matches(&self, credentials: &Credentials) -> bool {
        self.token.as_ref().is_some_and(|token| {
            credentials.keyed_digest_matches(
                message(self.bot.public_id(), self.bot.bot_id()).as_bytes(),
                &token.0,
            )
        })
    }
}

/// A delivery that is not one: the field at fault and why (the route makes it a request error;
/// never the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct Invalid {
    /// The field at fault (`public_id`, `bot_id`, `job_id` or `body`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// The fields of the §4 body read here; the rest (the output, possibly megabytes) is skipped.
#[derive(Deserialize)]
struct Body {
    job_id: Option<serde_json::Value>,
    bot_id: Option<serde_json::Value>,
}

/// The delivery for the BOT `public_id`/`bot_id` of the path (ids checked strictly), with path
/// token `token` and body `body` (Cloud BOT's Job object), on the API base `base`.
pub fn parse(
    base: &ApiBase,
    public_id: &str,
    bot_id: &str,
    token: &str,
    body: &[u8],
) -> Result<BotDone, Invalid> {
    let endpoint = |e: crate::cloudbot::EndpointError| invalid(e.field, e.reason.to_string());
    let public_id = PublicId::parse(public_id, "public_id").map_err(endpoint)?;
    let bot_id = BotId::parse(bot_id, "bot_id").map_err(endpoint)?;
    let bot = BotEndpoint::new(base, public_id, bot_id);
    let parsed: Body = serde_json::from_slice(body).map_err(|_| {
        invalid(
            "body",
            "must be a JSON object (Cloud BOT's job) with a job_id",
        )
    })?;
    let job_id = match parsed.job_id {
        Some(serde_json::Value::String(id)) => JobId::parse(&id, "job_id").map_err(endpoint)?,
        _ => return Err(invalid("job_id", "must be a string")),
    };
    let body_bot_id = match parsed.bot_id {
        Some(serde_json::Value::String(id)) => Some(id),
        None | Some(serde_json::Value::Null) => None,
        Some(_) => return Err(invalid("bot_id", "must be a string")),
    };
    let job = JobEndpoint::new(base, bot.public_id().clone(), job_id);
    Ok(BotDone {
        token: PathToken::parse(token),
        bot,
        job,
        body_bot_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ApiBase {
        ApiBase::parse("https://api.c-bot.pro").unwrap()
    }

    fn bot() -> BotEndpoint {
        BotEndpoint::parse(
            &base(),
            "https://api.c-bot.pro/demo/bots/echo_bot/jobs",
            "b",
        )
        .unwrap()
    }

    fn credentials(secret: &str) -> Credentials {
        Credentials::new("tok".into(), secret.into())
    }

    #[test]
    fn the_token_is_bound_to_the_bot_and_the_secret_key() {
        let b = bot();
        let url = webhook_url("https://cb.example/callbacks/", &b, &credentials("sec-1"));
        let prefix = "https://cb.example/callbacks/bot-done/demo/echo_bot/";
        assert!(url.starts_with(prefix), "{url}");
        let token = &url[prefix.len()..];
        assert_eq!(token.len(), TOKEN_CHARS);
        assert!(!url.contains("sec-1"));
        let done = parse(
            &base(),
            "demo",
            "echo_bot",
            token,
            br#"{"job_id":"j-1","bot_id":"echo_bot"}"#,
        )
        .unwrap();
        assert!(done.token_matches(&credentials("sec-1")));
        assert!(!done.token_matches(&credentials("sec-2")), "another key");
        let moved = parse(&base(), "demo", "other", token, br#"{"job_id":"j-1"}"#).unwrap();
        assert!(!moved.token_matches(&credentials("sec-1")), "another BOT");
        assert_eq!(done.job.url(), "https://api.c-bot.pro/demo/jobs/j-1");
        assert_eq!(format!("{done:?}").matches(token).count(), 0);
        assert_eq!(redacted(&url), format!("{prefix}***"));
    }

    #[test]
    fn a_token_of_the_wrong_shape_matches_nothing() {
        let done = parse(&base(), "demo", "echo_bot", "short", br#"{"job_id":"j-1"}"#).unwrap();
        assert!(done.token.is_none());
        assert!(!done.token_matches(&credentials("sec-1")));
    }

    #[test]
    fn the_body_is_checked_strictly_and_its_urls_ignored() {
        let token = "A".repeat(TOKEN_CHARS);
        for (body, needle) in [
            (&b"[]"[..], "`body`"),
            (b"{}", "job_id"),
            (br#"{"job_id":5}"#, "job_id"),
            (br#"{"job_id":"../x"}"#, "job_id"),
            (br#"{"job_id":"j","bot_id":1}"#, "bot_id"),
        ] {
            let e = parse(&base(), "demo", "echo_bot", &token, body)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
        let done = parse(
            &base(),
            "demo",
            "echo_bot",
            &token,
            br#"{"job_id":"j-2","job_reference_endpoint":"https://evil.example/demo/jobs/j-2","output":{"x":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(done.job.url(), "https://api.c-bot.pro/demo/jobs/j-2");
        assert_eq!(done.body_bot_id, None);
        for (p, b) in [("de mo", "echo_bot"), ("demo", "../x")] {
            assert!(parse(&base(), p, b, &token, br#"{"job_id":"j"}"#).is_err());
        }
    }
}
