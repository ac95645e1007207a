//! "BOT done" event subscriptions (cloudbot-api.md §3.9, third-party sourced): subscribe a
//! webhook to a BOT, list and delete subscriptions. Every job of a subscribed BOT, however it
//! was started, is then delivered to each endpoint when it ends ([`crate::lifecycle`]).
//!
//! [I] choices (the vendor's text for these endpoints was not readable): listing needs Refer,
//! subscribing and unsubscribing need Execute (a subscription makes the contract send job
//! results out, like an execute's `callback_endpoint`); subscribe answers 201; only
//! `event: "onended"` and `callback_type: "webhook"` are accepted (mail hooks are not
//! emulated); every subscribe call adds a subscription, even for an endpoint already subscribed.

use http::StatusCode;
use serde_json::{Value, json};

use crate::reply::{Reply, error, unprocessable};
use crate::state::{Lang, State, Subscription, lock};

fn unsubscribe_endpoint(state: &State, public_id: &str, bot_id: &str, id: u64) -> String {
    format!(
        "{}/{public_id}/bots/{bot_id}/subscriptions/{id}",
        state.base_url
    )
}

/// `GET /{public_id}/bots/{bot_id}/subscriptions` ([I] wrapper key `subscriptions`).
pub(crate) fn list(state: &State, public_id: &str, bot_id: &str) -> Reply {
    let items: Vec<Value> = lock(&state.subscriptions)
        .list
        .iter()
        .filter(|s| s.public_id == public_id && s.bot_id == bot_id)
        .map(|s| {
            json!({
                "subscribe_id": s.id,
                "event": s.event,
                "language": s.language.code(),
                "callback_type": "webhook",
                "callback_endpoint": s.callback_endpoint,
                "callback_emails": null,
                "disabled": false,
                "unsubscribe_endpoint": unsubscribe_endpoint(state, public_id, bot_id, s.id),
            })
        })
        .collect();
    Reply::ok(StatusCode::OK, json!({"code": 200, "subscriptions": items}))
}

/// The checked subscribe body: the event and the endpoint URL.
fn parse_subscribe(bytes: &[u8]) -> Result<(String, String), String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| "the request body is not valid JSON".to_string())?;
    let Value::Object(obj) = value else {
        return Err("the request body must be a JSON object".into());
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["event", "callback_type", "callback_endpoint"].contains(&k.as_str()))
    {
        return Err(format!("unknown field {k:?}"));
    }
    let event = match obj.get("event") {
        Some(Value::String(e)) if e == "onended" => e.clone(),
        None | Some(Value::Null) => return Err("event is required (\"onended\")".into()),
        Some(_) => return Err("event must be \"onended\"".into()),
    };
    match obj.get("callback_type") {
        Some(Value::String(t)) if t == "webhook" => {}
        None | Some(Value::Null) => return Err("callback_type is required (\"webhook\")".into()),
        Some(_) => {
            return Err("callback_type must be \"webhook\" (mail hooks are not emulated)".into());
        }
    }
    let endpoint = match obj.get("callback_endpoint") {
        Some(Value::String(s))
            if url::Url::parse(s)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) =>
        {
            s.clone()
        }
        None | Some(Value::Null) => return Err("callback_endpoint is required".into()),
        Some(_) => return Err("callback_endpoint must be an http(s) URL".into()),
    };
    Ok((event, endpoint))
}

/// `POST /{public_id}/bots/{bot_id}/subscriptions`: 201 with `subscribe_id` and
/// `unsubscribe_endpoint`, which is also the `Location` header.
pub(crate) fn subscribe(
    state: &State,
    public_id: &str,
    bot_id: &str,
    bytes: &[u8],
    lang: Lang,
) -> Reply {
    let (event, callback_endpoint) = match parse_subscribe(bytes) {
        Ok(v) => v,
        Err(m) => return unprocessable(m),
    };
    let id = {
        let mut subs = lock(&state.subscriptions);
        subs.next_id += 1;
        let id = subs.next_id;
        subs.list.push(Subscription {
            id,
            public_id: public_id.to_string(),
            bot_id: bot_id.to_string(),
            event,
            callback_endpoint,
            language: lang,
        });
        id
    };
    tracing::info!(public_id, bot_id, subscribe_id = id, "subscribed");
    let endpoint = unsubscribe_endpoint(state, public_id, bot_id, id);
    let mut reply = Reply::ok(
        StatusCode::CREATED,
        json!({"code": 201, "subscribe_id": id, "unsubscribe_endpoint": endpoint}),
    );
    reply.location = Some(endpoint);
    reply
}

/// `DELETE /{public_id}/bots/{bot_id}/subscriptions/{subscribe_id}`: 200 `{"code":200}`, or
/// 404 when the id is not a subscription of that BOT.
pub(crate) fn unsubscribe(
    state: &State,
    public_id: &str,
    bot_id: &str,
    subscribe_id: &str,
    lang: Lang,
) -> Reply {
    let removed = subscribe_id.parse::<u64>().ok().is_some_and(|id| {
        let mut subs = lock(&state.subscriptions);
        let before = subs.list.len();
        subs.list
            .retain(|s| !(s.id == id && s.public_id == public_id && s.bot_id == bot_id));
        subs.list.len() < before
    });
    if removed {
        tracing::info!(public_id, bot_id, subscribe_id, "unsubscribed");
        Reply::ok(StatusCode::OK, json!({"code": 200}))
    } else {
        error(
            StatusCode::NOT_FOUND,
            lang.pick(
                "サブスクリプションが見つかりません",
                "Subscription not found",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_body_validation_names_the_problem() {
        let ok = br#"{"event":"onended","callback_type":"webhook","callback_endpoint":"https://x.example/h"}"#;
        assert_eq!(parse_subscribe(ok).unwrap().1, "https://x.example/h");
        for (body, needle) in [
            (&b"[]"[..], "JSON object"),
            (b"{", "not valid JSON"),
            (br#"{"callback_type":"webhook","callback_endpoint":"https://x"}"#, "event is required"),
            (br#"{"event":"onstarted","callback_type":"webhook","callback_endpoint":"https://x"}"#, "event must be"),
            (br#"{"event":"onended","callback_type":"mailhook","callback_endpoint":"https://x"}"#, "callback_type"),
            (br#"{"event":"onended","callback_type":"webhook"}"#, "callback_endpoint is required"),
            (br#"{"event":"onended","callback_type":"webhook","callback_endpoint":"ftp://x"}"#, "http(s)"),
            (br#"{"event":"onended","callback_type":"webhook","callback_endpoint":"https://x","x":1}"#, "\"x\""),
        ] {
            let e = parse_subscribe(body).err().unwrap();
            assert!(e.contains(needle), "{e}");
        }
    }
}
