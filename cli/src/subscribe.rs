//! `cloudbot subscribe BOT`, `cloudbot unsubscribe BOT` and `cloudbot subscriptions BOT`: the
//! stack's callback API subscribed to a BOT's "BOT done" event, so runs started outside AWS reach
//! the run ledger and the job-finished events (docs/events.md, "Runs started outside AWS").
//!
//! Every command lists the BOT's subscriptions first: `subscribe` adds one only when this stack
//! has none with the current token (a second `subscribe` says it exists, and a subscribe whose
//! answer was lost can simply be run again), and removes this stack's stale ones (a token made
//! with an older secret key); `unsubscribe` removes this stack's. "This stack's" is a webhook URL
//! under the given callback base's `bot-done/<public_id>/<bot_id>/`. The path token is a secret:
//! URLs are printed with it as `***`, and other systems' URLs as their origin only.

use std::io::Write;

use cloudbot_trigger::bot_done::{self, PATH_SEGMENT};
use cloudbot_trigger::cloudbot::{BotEndpoint, BotId, CloudBotError, PublicId, Subscription};
use serde::Serialize;

use crate::commands::Context;
use crate::error::{CliError, SUBSCRIBE_ACTION, UNSUBSCRIBE_ACTION};
use crate::exit::Exit;
use crate::output::{BOLD, DIM};
use crate::session::{Session, Settings};
use crate::target::Origin;

/// Which of the three commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// `subscriptions`.
    List,
}

/// A BOT argument: a BOT execution endpoint, or `PUBLIC_ID/BOT_ID` on the API base.
pub fn bot_argument(origin: &Origin<'_>, raw: &str) -> Result<BotEndpoint, CliError> {
    if !raw.contains("://")
        && let Some((public_id, bot_id)) = raw.split_once('/')
    {
        let ids = PublicId::parse(public_id, "BOT")
            .and_then(|p| BotId::parse(bot_id, "BOT").map(|b| (p, b)));
        return match ids {
            Ok((p, b)) => Ok(BotEndpoint::new(origin.base, p, b)),
            Err(e) => Err(CliError::Usage(format!(
                "{e} (expected a BOT execution endpoint or PUBLIC_ID/BOT_ID)"
            ))),
        };
    }
    origin.bot(raw, "BOT")
}

/// The callback base (`--callback-url`, the stack output CallbackApiUrl), checked before
/// anything is sent: https (http on loopback only, for the emulator), no query, ending in
/// `/callbacks`.
pub fn callback_base(raw: Option<&str>) -> Result<String, CliError> {
    let raw = raw
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            CliError::Usage(
                "--callback-url (or CLOUDBOT_CALLBACK_BASE_URL) is required: the stack output \
             CallbackApiUrl (the stack needs Callbacks ENABLED)"
                    .into(),
            )
        })?;
    let url =
        url::Url::parse(raw).map_err(|_| CliError::Usage("--callback-url is not a URL".into()))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || url.host_str() == Some("localhost");
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(CliError::Usage(
            "--callback-url must be an https URL (http only on loopback)".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(CliError::Usage(
            "--callback-url must have no query, fragment or user info".into(),
        ));
    }
    let base = raw.trim_end_matches('/');
    if !base.ends_with("/callbacks") {
        return Err(CliError::Usage(
            "--callback-url must be the stack output CallbackApiUrl (ending in /callbacks)".into(),
        ));
    }
    Ok(base.to_owned())
}

/// A subscription as printed: its URL redacted, and whether it is this stack's.
#[derive(Debug, Serialize)]
struct Shown {
    subscribe_id: u64,
    event: Option<String>,
    callback_type: Option<String>,
    /// This stack's with its token as `***`; another system's as its origin.
    callback_endpoint: Option<String>,
    disabled: Option<bool>,
    this_stack: bool,
}

fn shown(s: &Subscription, prefix: Option<&str>) -> Shown {
    let ours = is_ours(s, prefix);
    Shown {
        subscribe_id: s.subscribe_id,
        event: s.event.clone(),
        callback_type: s.callback_type.clone(),
        callback_endpoint: s.callback_endpoint.as_deref().map(|u| redact(u, ours)),
        disabled: s.disabled,
        this_stack: ours,
    }
}

fn is_ours(s: &Subscription, prefix: Option<&str>) -> bool {
    match (prefix, s.callback_endpoint.as_deref()) {
        (Some(prefix), Some(url)) => url.starts_with(prefix),
        _ => false,
    }
}

fn redact(url: &str, ours: bool) -> String {
    if ours || url.contains(&format!("/{PATH_SEGMENT}/")) {
        return bot_done::redacted(url);
    }
    match url::Url::parse(url) {
        Ok(u) => format!("{}/…", u.origin().ascii_serialization()),
        Err(_) => "***".into(),
    }
}

/// What a command did, for `--json`.
#[derive(Debug, Serialize)]
struct Report {
    bot: String,
    /// `subscribed`, `exists`, `unsubscribed`, `not_subscribed` or `listed`.
    state: &'static str,
    /// The subscription made or found (`subscribe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribe_id: Option<u64>,
    /// This stack's subscriptions removed (stale ones by `subscribe`).
    removed: Vec<u64>,
    subscriptions: Vec<Shown>,
}

/// Runs `action` for the BOT `raw_bot`.
pub async fn run(
    ctx: &Context<'_>,
    action: Action,
    raw_bot: &str,
    raw_callback: Option<&str>,
) -> Result<Exit, CliError> {
    let settings = Settings::from_global(ctx.global)?;
    if let Some(notice) = settings.default_base_notice() {
        eprintln!("note: {notice}");
    }
    let bot = bot_argument(&settings.origin(), raw_bot)?;
    let callback = match (action, raw_callback) {
        (Action::List, None) => None,
        (_, raw) => Some(callback_base(raw)?),
    };
    let session = settings.connect(Some(bot.public_id())).await?;
    let prefix = callback
        .as_deref()
        .map(|base| bot_done::url_prefix(base, &bot));
    let progress = ctx.out.progress("listing the BOT's subscriptions");
    let listed = session
        .client
        .list_subscriptions(&session.call(), &bot)
        .await
        .map_err(CliError::cloud_bot("listing the BOT's subscriptions"))?;
    drop(progress);
    let name = format!("{}/{}", bot.public_id(), bot.bot_id());
    let mut report = Report {
        bot: name.clone(),
        state: "listed",
        subscribe_id: None,
        removed: Vec::new(),
        subscriptions: Vec::new(),
    };
    match (action, &callback) {
        (Action::Subscribe, Some(base)) => {
            let url = session.bot_done_url(base, &bot);
            let current = listed
                .iter()
                .find(|s| s.callback_endpoint.as_deref() == Some(url.as_str()));
            let id = match current {
                Some(s) => {
                    report.state = "exists";
                    s.subscribe_id
                }
                None => {
                    report.state = "subscribed";
                    subscribe(&session, &bot, &url).await?
                }
            };
            report.subscribe_id = Some(id);
            let stale: Vec<u64> = listed
                .iter()
                .filter(|s| is_ours(s, prefix.as_deref()) && s.subscribe_id != id)
                .map(|s| s.subscribe_id)
                .collect();
            report.removed = unsubscribe_all(&session, &bot, &stale).await?;
        }
        (Action::Unsubscribe, Some(_)) => {
            let ours: Vec<u64> = listed
                .iter()
                .filter(|s| is_ours(s, prefix.as_deref()))
                .map(|s| s.subscribe_id)
                .collect();
            report.state = if ours.is_empty() {
                "not_subscribed"
            } else {
                "unsubscribed"
            };
            report.removed = unsubscribe_all(&session, &bot, &ours).await?;
        }
        _ => {}
    }
    let after = if action == Action::List {
        listed
    } else {
        session
            .client
            .list_subscriptions(&session.call(), &bot)
            .await
            .map_err(CliError::cloud_bot("listing the BOT's subscriptions"))?
    };
    report.subscriptions = after.iter().map(|s| shown(s, prefix.as_deref())).collect();
    print(ctx, &report)?;
    Ok(Exit::Ok)
}

/// One subscribe POST. Its answer lost (`OutcomeUnknown`): a subscription may exist, and running
/// `subscribe` again finds it instead of adding a second.
async fn subscribe(session: &Session, bot: &BotEndpoint, url: &str) -> Result<u64, CliError> {
    match session.client.subscribe(&session.call(), bot, url).await {
        Ok(made) => Ok(made.subscribe_id),
        Err(CloudBotError::OutcomeUnknown { cause }) => Err(CliError::Subscription(format!(
            "the subscribe request's outcome is unknown ({cause}): a subscription may exist. \
             Run `cloudbot subscriptions {}/{}` to see, or `cloudbot subscribe` again (it \
             lists first and never subscribes twice)",
            bot.public_id(),
            bot.bot_id()
        ))),
        Err(err) => Err(CliError::cloud_bot(SUBSCRIBE_ACTION)(err)),
    }
}

/// Deletes `ids`; one already gone (404) counts as removed.
async fn unsubscribe_all(
    session: &Session,
    bot: &BotEndpoint,
    ids: &[u64],
) -> Result<Vec<u64>, CliError> {
    for id in ids {
        match session.client.unsubscribe(&session.call(), bot, *id).await {
            Ok(()) | Err(CloudBotError::NotFound) => {}
            Err(err) => return Err(CliError::cloud_bot(UNSUBSCRIBE_ACTION)(err)),
        }
    }
    Ok(ids.to_vec())
}

fn print(ctx: &Context<'_>, report: &Report) -> Result<(), CliError> {
    if ctx.out.is_json() {
        ctx.out.json(report)?;
        return Ok(());
    }
    let mut w = ctx.out.text();
    let bot = &report.bot;
    match report.state {
        "subscribed" => writeln!(
            w,
            "{BOLD}{bot}{BOLD:#}: subscribed (subscription {}); every end of its jobs, however \
             started, now reaches the stack",
            report.subscribe_id.unwrap_or_default()
        )?,
        "exists" => writeln!(
            w,
            "{BOLD}{bot}{BOLD:#}: already subscribed (subscription {}): nothing added",
            report.subscribe_id.unwrap_or_default()
        )?,
        "unsubscribed" => writeln!(w, "{BOLD}{bot}{BOLD:#}: unsubscribed")?,
        "not_subscribed" => writeln!(
            w,
            "{BOLD}{bot}{BOLD:#}: this stack is not subscribed: nothing removed"
        )?,
        _ => {}
    }
    if !report.removed.is_empty() {
        let ids: Vec<String> = report.removed.iter().map(u64::to_string).collect();
        writeln!(
            w,
            "  {DIM}removed  {DIM:#}this stack's subscription(s) {}",
            ids.join(", ")
        )?;
    }
    if report.subscriptions.is_empty() {
        writeln!(w, "{bot}: no event subscriptions")?;
    }
    for s in &report.subscriptions {
        writeln!(
            w,
            "  {:>6}  {:<8} {:<8} {}{}{}",
            s.subscribe_id,
            s.event.as_deref().unwrap_or("-"),
            s.callback_type.as_deref().unwrap_or("-"),
            s.callback_endpoint.as_deref().unwrap_or("-"),
            if s.this_stack { "  (this stack)" } else { "" },
            if s.disabled == Some(true) {
                "  (disabled)"
            } else {
                ""
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbot_trigger::cloudbot::ApiBase;

    #[test]
    fn a_bot_is_an_endpoint_or_public_id_slash_bot_id() {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let origin = Origin {
            base: &base,
            is_default: false,
        };
        let a = bot_argument(&origin, "demo/echo_bot").unwrap();
        let b = bot_argument(&origin, "https://api.c-bot.pro/demo/bots/echo_bot/jobs").unwrap();
        assert_eq!(a.url(), b.url());
        assert!(bot_argument(&origin, "demo/../x").is_err());
        assert!(bot_argument(&origin, "https://evil.example/demo/bots/echo_bot/jobs").is_err());
    }

    #[test]
    fn the_callback_url_is_the_stacks_callback_api() {
        let ok = "https://abc.execute-api.ap-northeast-1.amazonaws.com/callbacks/";
        assert_eq!(callback_base(Some(ok)).unwrap(), ok.trim_end_matches('/'));
        assert!(callback_base(Some("http://127.0.0.1:9/callbacks")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("http://abc.example/callbacks"),
            Some("https://abc.example/other"),
            Some("https://abc.example/callbacks?x=1"),
            Some("not a url"),
        ] {
            let err = callback_base(bad).unwrap_err();
            assert_eq!(err.exit(), Exit::Usage, "{bad:?}");
            assert!(err.to_string().contains("callback"), "{err}");
        }
    }

    #[test]
    fn urls_are_shown_without_their_secrets() {
        let ours = Subscription {
            subscribe_id: 1,
            event: Some("onended".into()),
            callback_type: Some("webhook".into()),
            callback_endpoint: Some("https://cb.example/callbacks/bot-done/demo/b/SECRET".into()),
            disabled: None,
        };
        let prefix = "https://cb.example/callbacks/bot-done/demo/b/";
        let s = shown(&ours, Some(prefix));
        assert!(s.this_stack);
        assert_eq!(
            s.callback_endpoint.as_deref(),
            Some("https://cb.example/callbacks/bot-done/demo/b/***")
        );
        let foreign = Subscription {
            callback_endpoint: Some("https://hooks.zapier.com/hooks/catch/123/SECRET/".into()),
            ..ours
        };
        let s = shown(&foreign, Some(prefix));
        assert!(!s.this_stack);
        assert_eq!(
            s.callback_endpoint.as_deref(),
            Some("https://hooks.zapier.com/…")
        );
    }
}
