//! The emulated Cloud BOT REST API: header checks, authentication, routing and the contract,
//! BOT and job endpoints. Answers are JSON values with a `code` equal to the HTTP status.
//!
//! Order of checks ([I], the real order is not documented): 413 (declared size) → 415
//! (content-type) → 422 (content-language) → 401 (token/secret) → 404/405 (unknown path) →
//! 403 (permission) → 404 (contract/BOT/job) → 413 (actual body size) → 422 (body).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::lifecycle::{self, Ending, NewJob};
use crate::output::{InputProblem, effective_input};
use crate::reply::{Reply, error, unprocessable};
use crate::seed::Permission;
use crate::state::{Job, JobOrigin, Lang, State, job_json, lock};
use crate::subscription;

/// Request bodies above 4 MB are refused (documented limit; 4 MiB exactly here).
pub const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;

enum Route<'a> {
    Contracts,
    Bots(&'a str),
    Bot(&'a str, &'a str),
    BotJobs(&'a str, &'a str),
    Job(&'a str, &'a str),
    Subscriptions(&'a str, &'a str),
    Subscription(&'a str, &'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(match segs.as_slice() {
        ["services", "contracts"] => Route::Contracts,
        [p, "bots"] => Route::Bots(p),
        [p, "bots", b] => Route::Bot(p, b),
        [p, "bots", b, "jobs"] => Route::BotJobs(p, b),
        [p, "jobs", j] => Route::Job(p, j),
        [p, "bots", b, "subscriptions"] => Route::Subscriptions(p, b),
        [p, "bots", b, "subscriptions", s] => Route::Subscription(p, b, s),
        _ => return None,
    })
}

fn language(headers: &HeaderMap) -> Option<Lang> {
    let v = headers.get("content-language")?.to_str().ok()?.trim();
    if v.eq_ignore_ascii_case("ja") {
        Some(Lang::Ja)
    } else if v.eq_ignore_ascii_case("en") {
        Some(Lang::En)
    } else {
        None
    }
}

/// `application/json`, optionally with `charset=utf-8` (the API is UTF-8 only).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = v.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/json"))
    {
        return false;
    }
    parts.all(|p| {
        p.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("charset")
                && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A credential header present exactly once (duplicates are ambiguous: treated as missing).
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// Constant-time comparison, so the emulator does not teach timing-unsafe habits.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn perm_name(p: Permission) -> &'static str {
    match p {
        Permission::Refer => "Refer",
        Permission::Execute => "Execute",
        Permission::Suspend => "Suspend",
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Handles one API request.
pub(crate) async fn handle(
    state: &Arc<State>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Incoming,
    request_seq: u64,
) -> Reply {
    // Messages follow content-language; [I] when it is missing or invalid the 413/415/422
    // answers are in English (the caller asked for no language we know).
    let lang = language(headers);
    let l = lang.unwrap_or(Lang::En);
    let declared = header(headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        // Decided from the header alone; the body is then discarded unbuffered (up to a cap)
        // so the client, still sending, reads the 413 instead of a reset.
        // A client waiting for `100 Continue` has sent nothing yet: answer without reading
        // (polling the body would make hyper invite the upload).
        let expects_continue =
            header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if !expects_continue {
            discard(body, DISCARD_CAP).await;
        }
        return too_large(l);
    }
    if !is_json(headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            l.pick(
                "content-typeにはapplication/jsonを指定してください",
                "content-type must be application/json",
            ),
        );
    }
    // [I] a missing or unknown content-language is a request the API cannot process: 422.
    let Some(lang) = lang else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "content-language must be \"ja\" or \"en\"".into(),
        );
    };
    // Authentication: access-token + secret-key. OAuth bearer tokens are not emulated (401).
    let token = {
        let tokens = lock(&state.tokens);
        match (
            single(headers, "access-token"),
            single(headers, "secret-key"),
        ) {
            (Some(t), Some(s)) => tokens
                .get(t)
                .filter(|tok| same(&tok.secret_key, s))
                .cloned(),
            _ => None,
        }
    };
    let Some(token) = token else {
        return error(
            StatusCode::UNAUTHORIZED,
            lang.pick(
                "アクセストークンまたはシークレットキーが正しくありません",
                "The access token or secret key is invalid",
            ),
        );
    };
    let Some(route) = route(path) else {
        return error(
            StatusCode::NOT_FOUND,
            lang.pick("APIが見つかりません", "No such API endpoint"),
        );
    };
    let needed = match (&route, method) {
        (
            Route::Contracts
            | Route::Bots(_)
            | Route::Bot(..)
            | Route::BotJobs(..)
            | Route::Job(..)
            | Route::Subscriptions(..),
            &Method::GET,
        ) => Permission::Refer,
        (Route::BotJobs(..), &Method::POST) => Permission::Execute,
        // [I] Subscribing and unsubscribing need Execute (see crate::subscription).
        (Route::Subscriptions(..), &Method::POST) | (Route::Subscription(..), &Method::DELETE) => {
            Permission::Execute
        }
        (Route::Job(..), &Method::DELETE) => Permission::Suspend,
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                lang.pick(
                    "このメソッドは使用できません",
                    "Method not allowed for this endpoint",
                ),
            );
        }
    };
    if !token.permissions.contains(&needed) {
        let p = perm_name(needed);
        return error(
            StatusCode::FORBIDDEN,
            lang.pick(
                &format!("アクセストークンに{p}権限がありません"),
                &format!("The access token lacks the {p} permission"),
            ),
        );
    }
    // [I] a contract the token may not use answers 404, like an unknown one (no existence leak).
    let contract_ok = |p: &str| token.contracts.contains(p) && state.contract(p).is_some();
    let not_found = |what_ja: &str, what_en: &str| {
        error(
            StatusCode::NOT_FOUND,
            lang.pick(
                &format!("{what_ja}が見つかりません"),
                &format!("{what_en} not found"),
            ),
        )
    };
    let query = query_pairs(query);
    match route {
        Route::Contracts => contracts(state, &token.contracts, &query),
        Route::Bots(p) if !contract_ok(p) => not_found("契約", "Contract"),
        Route::Bot(p, _)
        | Route::BotJobs(p, _)
        | Route::Job(p, _)
        | Route::Subscriptions(p, _)
        | Route::Subscription(p, _, _)
            if !contract_ok(p) =>
        {
            not_found("契約", "Contract")
        }
        Route::Subscriptions(p, b) | Route::Subscription(p, b, _) if state.bot(p, b).is_none() => {
            not_found("BOT", "BOT")
        }
        Route::Subscriptions(p, b) if method == Method::GET => match only_params(&query, &[]) {
            Ok(()) => subscription::list(state, p, b),
            Err(r) => r,
        },
        Route::Subscriptions(p, b) => match read_body(body, lang).await {
            Ok(bytes) => subscription::subscribe(state, p, b, &bytes, lang),
            Err(reply) => reply,
        },
        Route::Subscription(p, b, s) => subscription::unsubscribe(state, p, b, s, lang),
        Route::Bots(p) => bots(state, p, &query),
        Route::Bot(p, b) => match state.bot(p, b) {
            None => not_found("BOT", "BOT"),
            Some(_) => bot_detail(state, p, b, &query, lang),
        },
        Route::BotJobs(p, b) if state.bot(p, b).is_none() => not_found("BOT", "BOT"),
        Route::BotJobs(p, b) if method == Method::GET => job_list(state, p, b, &query, lang),
        Route::BotJobs(p, b) => match read_body(body, lang).await {
            Ok(bytes) => execute(state, p, b, &bytes, lang).await,
            Err(reply) => reply,
        },
        Route::Job(p, j) => {
            let exists = lock(&state.jobs)
                .by_id
                .get(j)
                .is_some_and(|job| job.public_id == p);
            if !exists {
                return not_found("ジョブ", "Job");
            }
            if method == Method::DELETE {
                lifecycle::finish(state, j, Ending::Suspended { request_seq });
            }
            let jobs = lock(&state.jobs);
            match jobs.by_id.get(j) {
                // Suspend returns the job without `output` (§3.7); refer includes it.
                Some(job) => Reply::ok(
                    StatusCode::OK,
                    job_json(job, 200, lang, method == Method::GET, &state.base_url),
                ),
                None => not_found("ジョブ", "Job"),
            }
        }
    }
}

fn too_large(l: Lang) -> Reply {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        l.pick(
            "リクエストボディが4MBを超えています",
            "The request body exceeds 4 MB",
        ),
    )
}

/// How much of a refused body is read and dropped before answering 413.
const DISCARD_CAP: u64 = 2 * MAX_BODY_BYTES;

/// Reads and drops body frames until the end or `cap` bytes (never buffers them).
async fn discard(mut body: Incoming, cap: u64) {
    let mut seen = 0u64;
    while seen <= cap {
        match body.frame().await {
            Some(Ok(frame)) => {
                seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}

/// Reads the body, refusing more than 4 MB even without (or with a lying) Content-Length:
/// at most 4 MiB is buffered, the rest is discarded (up to a cap) before answering 413.
async fn read_body(mut body: Incoming, lang: Lang) -> Result<Bytes, Reply> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                lang.pick(
                    "リクエストボディを読み取れません",
                    "The request body could not be read",
                ),
            ));
        };
        if let Some(data) = frame.data_ref() {
            if (buf.len() + data.len()) as u64 > MAX_BODY_BYTES {
                discard(body, DISCARD_CAP).await;
                return Err(too_large(lang));
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(buf.freeze())
}

/// `properties=a,b` as a set, checked against the allowed names ([I] unknown names → 422), after
/// checking that the query has no parameter outside `params`.
fn properties<'a>(
    query: &[(String, String)],
    params: &[&str],
    allowed: &[&'a str],
) -> Result<HashSet<&'a str>, Reply> {
    only_params(query, params)?;
    let mut set = HashSet::new();
    for (k, v) in query {
        if k != "properties" {
            continue;
        }
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match allowed.iter().find(|a| **a == p) {
                Some(a) => {
                    set.insert(*a);
                }
                None => {
                    return Err(unprocessable(format!(
                        "unknown property {p:?} in properties"
                    )));
                }
            }
        }
    }
    Ok(set)
}

pub(crate) fn only_params(query: &[(String, String)], allowed: &[&str]) -> Result<(), Reply> {
    match query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(unprocessable(format!("unknown query parameter {k:?}"))),
        None => Ok(()),
    }
}

fn contracts(state: &State, allowed: &HashSet<String>, query: &[(String, String)]) -> Reply {
    const PROPS: [&str; 11] = [
        "plan",
        "owner",
        "timezone",
        "location",
        "name",
        "organization",
        "postcode",
        "address",
        "phone",
        "department",
        "username",
    ];
    let props = match properties(query, &["properties"], &PROPS) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let list: Vec<Value> = state
        .seed
        .contracts
        .iter()
        .filter(|c| allowed.contains(&c.public_id))
        .map(|c| {
            let fields = [
                ("plan", &c.plan),
                ("owner", &c.owner),
                ("timezone", &c.timezone),
                ("location", &c.location),
                ("name", &c.name),
                ("organization", &c.organization),
                ("postcode", &c.postcode),
                ("address", &c.address),
                ("phone", &c.phone),
                ("department", &c.department),
                ("username", &c.username),
            ];
            let mut m = Map::new();
            m.insert("public_id".into(), json!(c.public_id));
            m.insert("public_path".into(), json!(format!("/{}/", c.public_id)));
            // Unrequested properties are null, as in the documented sample.
            for (k, v) in fields {
                let value = if props.contains(k) {
                    json!(v)
                } else {
                    Value::Null
                };
                m.insert(k.into(), value);
            }
            Value::Object(m)
        })
        .collect();
    Reply::ok(StatusCode::OK, json!({"code": 200, "contracts": list}))
}

const BOT_PROPS: [&str; 4] = ["icon", "created", "last_modified", "creator"];

fn bot_json(b: &crate::seed::BotSeed, props: &HashSet<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(b.id));
    m.insert("name".into(), json!(b.name));
    m.insert("description".into(), json!(b.description));
    for (k, v) in [
        ("icon", &b.icon),
        ("created", &b.created),
        ("last_modified", &b.last_modified),
        ("creator", &b.creator),
    ] {
        if props.contains(k) {
            m.insert(k.into(), json!(v));
        }
    }
    m
}

fn bots(state: &State, public_id: &str, query: &[(String, String)]) -> Reply {
    let props = match properties(query, &["properties"], &BOT_PROPS) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let list: Vec<Value> = state
        .contract(public_id)
        .map(|c| {
            c.bots
                .iter()
                .filter(|b| b.published)
                .map(|b| Value::Object(bot_json(b, &props)))
                .collect()
        })
        .unwrap_or_default();
    Reply::ok(StatusCode::OK, json!({"code": 200, "bots": list}))
}

fn bot_detail(
    state: &State,
    public_id: &str,
    bot_id: &str,
    query: &[(String, String)],
    lang: Lang,
) -> Reply {
    // `input`/`output` are accepted in properties but always included ([I]: the detail is what
    // callers read to build an input payload).
    let props = match properties(
        query,
        &["properties"],
        &[
            "icon",
            "created",
            "last_modified",
            "creator",
            "input",
            "output",
        ],
    ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(b) = state.bot(public_id, bot_id) else {
        return error(
            StatusCode::NOT_FOUND,
            lang.pick("BOTが見つかりません", "BOT not found"),
        );
    };
    let mut m = bot_json(b, &props);
    let defs = |items: Vec<(String, Value)>| Value::Object(items.into_iter().collect());
    m.insert(
        "input".into(),
        defs(
            b.input
                .iter()
                .map(|i| {
                    (
                        i.name.clone(),
                        json!({"type": i.data_type, "default": i.default}),
                    )
                })
                .collect(),
        ),
    );
    m.insert(
        "output".into(),
        defs(
            b.output
                .iter()
                .map(|o| (o.name.clone(), json!({"type": o.data_type})))
                .collect(),
        ),
    );
    m.insert("code".into(), json!(200));
    Reply::ok(StatusCode::OK, Value::Object(m))
}

fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, Reply> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| unprocessable(format!("{name} must be an ISO 8601 date-time")))
}

fn job_list(
    state: &State,
    public_id: &str,
    bot_id: &str,
    query: &[(String, String)],
    lang: Lang,
) -> Reply {
    const PARAMS: [&str; 8] = [
        "limit",
        "sort_order",
        "statuses",
        "datetime_from",
        "datetime_to",
        "id_from",
        "id_to",
        "properties",
    ];
    let props = match properties(query, &PARAMS, &["output"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let get = |k: &str| {
        query
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    // [I] default: 100 newest first.
    let limit = match get("limit").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if n >= 1 => n,
        _ => return unprocessable("limit must be a positive integer".into()),
    };
    let desc = match get("sort_order") {
        None | Some("desc") => true,
        Some("asc") => false,
        _ => return unprocessable("sort_order must be asc or desc".into()),
    };
    let statuses: Option<HashSet<u8>> = match get("statuses") {
        None => None,
        Some(v) => match v
            .split(',')
            .map(|s| s.trim().parse::<u8>().ok().filter(|s| *s <= 2))
            .collect()
        {
            Some(s) => Some(s),
            None => return unprocessable("statuses must be a comma list of 0, 1, 2".into()),
        },
    };
    let from = match get("datetime_from")
        .map(|v| parse_time("datetime_from", v))
        .transpose()
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let to = match get("datetime_to")
        .map(|v| parse_time("datetime_to", v))
        .transpose()
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let jobs = lock(&state.jobs);
    // id_from/id_to are exclusive bounds in creation order ([I]).
    let seq_of = |name: &str| -> Result<Option<u64>, Reply> {
        match get(name) {
            None => Ok(None),
            Some(id) => jobs
                .by_id
                .get(id)
                .map(|j| Some(j.seq))
                .ok_or_else(|| unprocessable(format!("{name} names an unknown job"))),
        }
    };
    let (id_from, id_to) = match (seq_of("id_from"), seq_of("id_to")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let matches = |j: &&Job| {
        j.public_id == public_id
            && j.bot_id == bot_id
            && statuses
                .as_ref()
                .is_none_or(|s| s.contains(&j.visible_status()))
            && from.is_none_or(|f| j.start >= f)
            && to.is_none_or(|t| j.start <= t)
            && id_from.is_none_or(|s| j.seq > s)
            && id_to.is_none_or(|s| j.seq < s)
    };
    let ordered: Box<dyn Iterator<Item = &String>> = if desc {
        Box::new(jobs.order.iter().rev())
    } else {
        Box::new(jobs.order.iter())
    };
    let list: Vec<Value> = ordered
        .filter_map(|id| jobs.by_id.get(id))
        .filter(matches)
        .take(limit)
        .map(|j| {
            let mut v = job_json(j, 200, lang, props.contains("output"), &state.base_url);
            if let Value::Object(m) = &mut v {
                m.remove("code");
            }
            v
        })
        .collect();
    Reply::ok(StatusCode::OK, json!({"code": 200, "jobs": list}))
}

struct ExecuteBody {
    timeout_ms: u64,
    callback_endpoint: Option<String>,
    callback_tries: u32,
    input: Option<Map<String, Value>>,
}

fn parse_execute(bytes: &[u8]) -> Result<ExecuteBody, String> {
    // [I] an empty body means "all defaults" (every field is optional).
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(bytes)
            .map_err(|_| "the request body is not valid JSON".to_string())?
    };
    let Value::Object(mut obj) = value else {
        return Err("the request body must be a JSON object".into());
    };
    // [I] unknown fields are rejected (naming the field) so client typos surface in tests.
    if let Some(k) = obj.keys().find(|k| {
        !["timeout", "callback_endpoint", "callback_tries", "input"].contains(&k.as_str())
    }) {
        return Err(format!("unknown field {k:?}"));
    }
    let timeout_ms = match obj.get("timeout") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or("timeout must be a non-negative integer (milliseconds)")?,
    };
    let callback_endpoint = match obj.get("callback_endpoint") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let ok = url::Url::parse(s)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err("callback_endpoint must be an http(s) URL".into());
            }
            Some(s.clone())
        }
        Some(_) => return Err("callback_endpoint must be a string".into()),
    };
    // [I] default 1 attempt when an endpoint is given without callback_tries.
    let callback_tries = match obj.get("callback_tries") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("callback_tries must be an integer of at least 1")?,
    };
    let input = match obj.remove("input") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err("input must be a JSON object".into()),
    };
    Ok(ExecuteBody {
        timeout_ms,
        callback_endpoint,
        callback_tries,
        input,
    })
}

async fn execute(
    state: &Arc<State>,
    public_id: &str,
    bot_id: &str,
    bytes: &[u8],
    lang: Lang,
) -> Reply {
    let body = match parse_execute(bytes) {
        Ok(b) => b,
        Err(m) => return unprocessable(m),
    };
    let Some(bot) = state.bot(public_id, bot_id) else {
        return error(
            StatusCode::NOT_FOUND,
            lang.pick("BOTが見つかりません", "BOT not found"),
        );
    };
    let input = match effective_input(bot, body.input.as_ref()) {
        Ok(i) => i,
        Err(e) => {
            return unprocessable(match e.problem {
                InputProblem::Unknown => {
                    format!("input {:?} is not an input of BOT {bot_id:?}", e.key)
                }
                InputProblem::Shape(m) => format!("input {:?}: {m}", e.key),
            });
        }
    };
    let lifecycle::Started {
        job_id,
        reply,
        done: mut done_rx,
    } = lifecycle::start(
        state,
        public_id,
        bot,
        NewJob {
            input,
            callback_endpoint: body.callback_endpoint,
            callback_tries: body.callback_tries,
            language: lang,
            origin: JobOrigin::Api,
        },
    );
    if body.timeout_ms > 0 {
        let wait = tokio::time::timeout(
            Duration::from_millis(body.timeout_ms),
            done_rx.wait_for(|d| *d),
        );
        if let Ok(Ok(_)) = wait.await {
            let jobs = lock(&state.jobs);
            if let Some(job) = jobs.by_id.get(&job_id) {
                return Reply {
                    status: StatusCode::OK,
                    body: job_json(job, 200, lang, true, &state.base_url),
                    job_id: Some(job_id.clone()),
                    location: None,
                };
            }
        }
    }
    Reply {
        status: StatusCode::CREATED,
        body: reply,
        job_id: Some(job_id),
        location: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_accepts_only_json_utf8() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (v, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=UTF-8", true),
            ("application/json;charset=\"utf-8\"", true),
            ("application/json; charset=latin1", false),
            ("text/plain", false),
            ("application/jsonp", false),
        ] {
            h.insert(http::header::CONTENT_TYPE, v.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{v}");
        }
    }

    #[test]
    fn execute_body_validation_names_the_problem() {
        assert_eq!(parse_execute(b"").unwrap().timeout_ms, 0);
        for (body, needle) in [
            (&b"[]"[..], "JSON object"),
            (b"{", "not valid JSON"),
            (b"{\"input\": []}", "input"),
            (b"{\"timeout\": -1}", "timeout"),
            (b"{\"timeout\": \"5\"}", "timeout"),
            (b"{\"callback_tries\": 0}", "callback_tries"),
            (b"{\"callback_endpoint\": \"ftp://x\"}", "callback_endpoint"),
            (b"{\"inputs\": {}}", "\"inputs\""),
        ] {
            let e = parse_execute(body).err().unwrap();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn routes_match_exact_shapes() {
        assert!(matches!(
            route("/services/contracts"),
            Some(Route::Contracts)
        ));
        assert!(matches!(
            route("/demo/bots/x/jobs"),
            Some(Route::BotJobs("demo", "x"))
        ));
        assert!(matches!(
            route("/demo/jobs/j"),
            Some(Route::Job("demo", "j"))
        ));
        assert!(matches!(
            route("/demo/bots/x/subscriptions"),
            Some(Route::Subscriptions("demo", "x"))
        ));
        assert!(matches!(
            route("/demo/bots/x/subscriptions/7"),
            Some(Route::Subscription("demo", "x", "7"))
        ));
        assert!(route("/demo/bots/x/subscriptions/7/x").is_none());
        assert!(route("/demo/bots/").is_none());
        assert!(route("/demo//bots").is_none());
        assert!(route("/demo/bots/x/jobs/y").is_none());
    }
}
