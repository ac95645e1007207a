//! Shared mutable state of a running emulator: tokens, jobs and their timers, the request and
//! callback logs, fault rules, latency and counters. Each part has its own short-held lock or
//! atomic so the request hot path stays cheap under load.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::fault::{FaultKind, FaultRules};
use crate::idle::IdlePolicy;
use crate::seed::{BotSeed, ContractSeed, Permission, Seed};

/// Oldest request records are dropped beyond this many (keeps memory flat under benchmarks).
const REQUEST_LOG_CAP: usize = 100_000;

/// Language of messages (`content-language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Ja,
    En,
}

impl Lang {
    /// The `content-language` value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn pick(self, ja: &str, en: &str) -> String {
        match self {
            Lang::Ja => ja.to_string(),
            Lang::En => en.to_string(),
        }
    }
}

/// One API request as seen by the emulator. Never holds credentials, input values or bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number (1-based, per emulator since the last reset).
    pub seq: u64,
    /// Id of the TCP connection it arrived on (1-based, in accept order).
    pub connection_id: u64,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Status answered; `None` when the connection was closed without an answer.
    pub status: Option<u16>,
    /// Job created by this request, if any.
    pub job_id: Option<String>,
    /// Fault applied, if any.
    pub fault: Option<FaultKind>,
    /// When the request arrived (RFC 3339, UTC, milliseconds).
    pub received_at: String,
    /// Which token the request's `access-token` header presented: its position in the seed's
    /// `tokens` (the same after a rotation, for the new token and the replaced one), `None`
    /// when the emulator never knew such a token.
    /// Never the token itself.
    #[serde(default)]
    pub token: Option<usize>,
}

/// Counters (`GET /__emulator/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// TCP connections accepted since start or reset.
    pub connections_accepted: u64,
    /// TCP connections open right now.
    pub connections_open: u64,
    /// API requests received (admin requests excluded).
    pub requests: u64,
    /// Jobs created.
    pub jobs_created: u64,
    /// Callback POST attempts made (job callbacks and subscription deliveries).
    pub callback_attempts: u64,
    /// Jobs ended by `DELETE /{public_id}/jobs/{job_id}` (a suspend of a finished job does
    /// not count).
    #[serde(default)]
    pub jobs_suspended: u64,
    /// Keep-alive connections ended by the idle timeout (closed with a FIN or dropped
    /// silently, as configured).
    #[serde(default)]
    pub connections_idle_closed: u64,
    /// TLS handshakes completed (HTTPS only).
    #[serde(default)]
    pub tls_handshakes: u64,
    /// Of those, the ones that resumed an earlier session instead of a full handshake.
    #[serde(default)]
    pub tls_handshakes_resumed: u64,
}

/// A job as the emulator holds it (`GET /__emulator/jobs`). Input values are not exposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job UUID.
    pub job_id: String,
    /// Contract.
    pub public_id: String,
    /// BOT ID.
    pub bot_id: String,
    /// BOT name.
    pub bot_name: String,
    /// 0 succeeded, 1 error, 2 executing.
    pub status: u8,
    /// Start (RFC 3339, seconds, `Z`).
    pub start_time: String,
    /// End (RFC 3339, milliseconds), `None` while executing.
    pub end_time: Option<String>,
    /// Whether it ended through `DELETE /{public_id}/jobs/{job_id}`.
    pub suspended: bool,
    /// Final output (succeeded jobs only).
    pub output: Option<Value>,
    /// Callback URL (query string values redacted).
    pub callback_endpoint: Option<String>,
    /// Callback attempts allowed.
    pub callback_tries: u32,
    /// How it was started.
    #[serde(default = "default_origin")]
    pub origin: JobOrigin,
    /// When it was suspended (RFC 3339, milliseconds).
    #[serde(default)]
    pub suspended_at: Option<String>,
    /// `seq` of the `DELETE` request (in `GET /__emulator/requests`) that suspended it: that
    /// record says when and on which connection.
    #[serde(default)]
    pub suspended_by_request: Option<u64>,
    /// The BOT has ended but the API still reads the job as executing until its callback is
    /// acknowledged ("hold until callback acknowledged" mode); `status` here is the final one.
    #[serde(default)]
    pub held_for_callback: bool,
}

fn default_origin() -> JobOrigin {
    JobOrigin::Api
}

/// One callback POST attempt (`GET /__emulator/callbacks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    /// The job reported.
    pub job_id: String,
    /// Target URL (query string values redacted).
    pub url: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// HTTP status answered, if the endpoint answered.
    pub status: Option<u16>,
    /// Transport error (`connect`, `timeout`, ...) when it did not answer.
    pub error: Option<String>,
    /// When the attempt was made (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// The "BOT done" subscription this delivery is for; `None` for the job's own
    /// `callback_endpoint`.
    #[serde(default)]
    pub subscribe_id: Option<u64>,
}

/// How a job was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOrigin {
    /// `POST /{public_id}/bots/{bot_id}/jobs`.
    Api,
    /// `POST /__emulator/bots/{public_id}/{bot_id}/run`: a run started outside the API (Cloud
    /// BOT's console, its own schedules, kintone, Zapier...).
    Console,
}

/// A "BOT done" event subscription (`GET /__emulator/subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Id answered by the subscribe call.
    pub subscribe_id: u64,
    /// Contract.
    pub public_id: String,
    /// BOT ID.
    pub bot_id: String,
    /// Event name (`onended`).
    pub event: String,
    /// Where the job payload is POSTed (query string values redacted).
    pub callback_endpoint: String,
    /// `content-language` of the subscribe request (language of the payload's message).
    pub language: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// Position in the seed's `tokens` (kept by a rotation): what the request log records.
    pub seed_index: usize,
    pub secret_key: String,
    pub permissions: HashSet<Permission>,
    pub contracts: HashSet<String>,
}

pub(crate) struct Job {
    pub job_id: String,
    pub seq: u64,
    pub public_id: String,
    pub bot_id: String,
    pub bot_name: String,
    pub status: u8,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub suspended: bool,
    pub error_message: Option<String>,
    pub output: Option<Value>,
    pub input: Map<String, Value>,
    pub callback_endpoint: Option<String>,
    pub callback_tries: u32,
    pub language: Lang,
    pub origin: JobOrigin,
    pub suspended_at: Option<DateTime<Utc>>,
    pub suspended_by_request: Option<u64>,
    /// Ended, but read as executing until its callback is acknowledged (or given up).
    pub held: bool,
    pub done: watch::Sender<bool>,
}

impl Job {
    /// The status the API shows: executing while held for its callback.
    pub fn visible_status(&self) -> u8 {
        if self.held { 2 } else { self.status }
    }
}

pub(crate) struct Subscription {
    pub id: u64,
    pub public_id: String,
    pub bot_id: String,
    pub event: String,
    pub callback_endpoint: String,
    pub language: Lang,
}

#[derive(Default)]
pub(crate) struct Subscriptions {
    pub list: Vec<Subscription>,
    pub next_id: u64,
}

#[derive(Default)]
pub(crate) struct Jobs {
    pub by_id: HashMap<String, Job>,
    pub order: Vec<String>,
    pub next_seq: u64,
    /// Jobs executing now, per contract (a held job has ended: it no longer runs).
    pub running: HashMap<String, usize>,
    /// The most jobs executing at once, per contract, since the last reset (what a cap on
    /// running jobs is checked against).
    pub peak_running: HashMap<String, usize>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
    pub requests: AtomicU64,
    pub jobs_created: AtomicU64,
    pub callback_attempts: AtomicU64,
    pub jobs_suspended: AtomicU64,
    pub connections_idle_closed: AtomicU64,
    pub tls_handshakes: AtomicU64,
    pub tls_handshakes_resumed: AtomicU64,
}

pub(crate) struct State {
    pub seed: Seed,
    pub tokens: Mutex<HashMap<String, Arc<Token>>>,
    /// Access tokens replaced by a rotation (answered 401), with their seed position, so the
    /// request log still says whose token a rejected request presented.
    pub retired_tokens: Mutex<HashMap<String, usize>>,
    pub jobs: Mutex<Jobs>,
    pub subscriptions: Mutex<Subscriptions>,
    /// Bytes of padding added to every succeeded job's output (`padding` item); 0 = none.
    pub output_padding: AtomicU64,
    /// "Hold until callback acknowledged" mode, and its value at start (restored by reset).
    pub hold_for_callback: std::sync::atomic::AtomicBool,
    pub hold_for_callback_default: bool,
    /// Outcomes for the next jobs to end naturally, in order, before the BOT's own
    /// (`PUT /__emulator/outcomes`): a BOT that fails, then succeeds.
    pub outcomes: Mutex<VecDeque<crate::seed::Outcome>>,
    pub requests: Mutex<VecDeque<RequestRecord>>,
    pub callbacks: Mutex<Vec<CallbackAttempt>>,
    pub faults: Mutex<FaultRules>,
    /// Fast check that skips the fault lock when no rule is active.
    pub faults_active: std::sync::atomic::AtomicBool,
    pub latency_ms: AtomicU64,
    pub counters: Counters,
    pub callback_interval: Duration,
    pub callback_timeout: Duration,
    /// When idle keep-alive connections end; never when `None`.
    pub idle: Option<IdlePolicy>,
    /// Serves HTTPS with this acceptor; plain HTTP when `None`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub http: reqwest::Client,
    pub base_url: String,
    /// Bumped by reset so timers and callback loops of forgotten jobs stop recording.
    pub generation: AtomicU64,
}

/// Locks a mutex, recovering the data if a thread panicked while holding it (the state stays
/// usable for the other tests sharing the emulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn rfc3339_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Callback URLs may carry a secret in the query (the documented way to protect an endpoint):
/// keep query keys, hide values.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        None => url.to_string(),
        Some((base, query)) => {
            let keys: Vec<String> = query
                .split('&')
                .map(|kv| format!("{}=***", kv.split('=').next().unwrap_or("")))
                .collect();
            format!("{base}?{}", keys.join("&"))
        }
    }
}

fn tokens_from_seed(seed: &Seed) -> HashMap<String, Arc<Token>> {
    seed.tokens
        .iter()
        .enumerate()
        .map(|(seed_index, t)| {
            (
                t.access_token.clone(),
                Arc::new(Token {
                    seed_index,
                    secret_key: t.secret_key.clone(),
                    permissions: t.permissions.iter().copied().collect(),
                    contracts: t.contracts.iter().cloned().collect(),
                }),
            )
        })
        .collect()
}

impl State {
    pub fn new(
        seed: Seed,
        callback_interval: Duration,
        callback_timeout: Duration,
        idle: Option<IdlePolicy>,
        tls: Option<tokio_rustls::TlsAcceptor>,
        base_url: String,
        hold_for_callback: bool,
    ) -> Result<State, reqwest::Error> {
        // Callbacks go to local receivers in tests and local runs: never through an
        // environment proxy.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(callback_timeout)
            .user_agent(concat!("cloudbot-emulator/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(State {
            tokens: Mutex::new(tokens_from_seed(&seed)),
            retired_tokens: Mutex::new(HashMap::new()),
            seed,
            jobs: Mutex::default(),
            subscriptions: Mutex::default(),
            output_padding: AtomicU64::new(0),
            hold_for_callback: std::sync::atomic::AtomicBool::new(hold_for_callback),
            hold_for_callback_default: hold_for_callback,
            outcomes: Mutex::new(VecDeque::new()),
            requests: Mutex::default(),
            callbacks: Mutex::default(),
            faults: Mutex::default(),
            faults_active: Default::default(),
            latency_ms: AtomicU64::new(0),
            counters: Counters::default(),
            callback_interval,
            callback_timeout,
            idle,
            tls,
            http,
            base_url,
            generation: AtomicU64::new(0),
        })
    }

    pub fn contract(&self, public_id: &str) -> Option<&ContractSeed> {
        self.seed
            .contracts
            .iter()
            .find(|c| c.public_id == public_id)
    }

    /// A BOT that is published as API (unpublished ones are invisible, like unknown ones).
    pub fn bot(&self, public_id: &str, bot_id: &str) -> Option<&BotSeed> {
        self.contract(public_id)?
            .bots
            .iter()
            .find(|b| b.id == bot_id && b.published)
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            connections_accepted: c.connections_accepted.load(Ordering::Relaxed),
            connections_open: c.connections_open.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            jobs_created: c.jobs_created.load(Ordering::Relaxed),
            callback_attempts: c.callback_attempts.load(Ordering::Relaxed),
            jobs_suspended: c.jobs_suspended.load(Ordering::Relaxed),
            connections_idle_closed: c.connections_idle_closed.load(Ordering::Relaxed),
            tls_handshakes: c.tls_handshakes.load(Ordering::Relaxed),
            tls_handshakes_resumed: c.tls_handshakes_resumed.load(Ordering::Relaxed),
        }
    }

    pub fn record_request(&self, record: RequestRecord) {
        let mut log = lock(&self.requests);
        if log.len() >= REQUEST_LOG_CAP {
            log.pop_front();
        }
        log.push_back(record);
    }

    pub fn add_faults(&self, rules: Vec<crate::fault::FaultRule>) {
        let mut f = lock(&self.faults);
        f.add(rules);
        self.faults_active.store(!f.is_empty(), Ordering::Release);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
        self.faults_active.store(false, Ordering::Release);
    }

    pub fn take_fault(&self, method: &str, path: &str) -> Option<crate::fault::Fault> {
        if !self.faults_active.load(Ordering::Acquire) {
            return None;
        }
        let mut f = lock(&self.faults);
        let fault = f.take(method, path);
        self.faults_active.store(!f.is_empty(), Ordering::Release);
        fault
    }

    /// Replaces `old` with a new token/secret pair keeping its permissions; `false` if unknown.
    pub fn rotate_token(&self, old: &str, new_access: &str, new_secret: &str) -> bool {
        let mut tokens = lock(&self.tokens);
        match tokens.remove(old) {
            Some(t) => {
                lock(&self.retired_tokens).insert(old.to_string(), t.seed_index);
                let rotated = Token {
                    secret_key: new_secret.to_string(),
                    ..(*t).clone()
                };
                tokens.insert(new_access.to_string(), Arc::new(rotated));
                true
            }
            None => false,
        }
    }

    /// Back to the seed: forgets jobs, requests, callbacks, faults, latency, counters and
    /// rotated tokens. Open connections stay open (and counted).
    pub fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *lock(&self.tokens) = tokens_from_seed(&self.seed);
        lock(&self.retired_tokens).clear();
        *lock(&self.jobs) = Jobs::default();
        lock(&self.requests).clear();
        lock(&self.callbacks).clear();
        self.clear_faults();
        self.latency_ms.store(0, Ordering::Relaxed);
        let c = &self.counters;
        c.connections_accepted.store(0, Ordering::Relaxed);
        c.requests.store(0, Ordering::Relaxed);
        c.jobs_created.store(0, Ordering::Relaxed);
        c.callback_attempts.store(0, Ordering::Relaxed);
        c.jobs_suspended.store(0, Ordering::Relaxed);
        *lock(&self.subscriptions) = Subscriptions::default();
        self.output_padding.store(0, Ordering::Relaxed);
        lock(&self.outcomes).clear();
        self.hold_for_callback
            .store(self.hold_for_callback_default, Ordering::Relaxed);
        c.connections_idle_closed.store(0, Ordering::Relaxed);
        c.tls_handshakes.store(0, Ordering::Relaxed);
        c.tls_handshakes_resumed.store(0, Ordering::Relaxed);
    }

    /// Replaces the scripted outcomes of the next jobs to end.
    pub fn script_outcomes(&self, outcomes: Vec<crate::seed::Outcome>) {
        *lock(&self.outcomes) = outcomes.into();
    }

    /// The scripted outcomes not used yet.
    pub fn scripted_outcomes(&self) -> Vec<crate::seed::Outcome> {
        lock(&self.outcomes).iter().copied().collect()
    }

    /// The outcome of a job ending now: the next scripted one, else the BOT's.
    pub fn next_outcome(&self, bot: crate::seed::Outcome) -> crate::seed::Outcome {
        lock(&self.outcomes).pop_front().unwrap_or(bot)
    }

    pub fn job_records(&self) -> Vec<JobRecord> {
        let jobs = lock(&self.jobs);
        jobs.order
            .iter()
            .filter_map(|id| jobs.by_id.get(id))
            .map(job_record)
            .collect()
    }

    pub fn job_record(&self, job_id: &str) -> Option<JobRecord> {
        lock(&self.jobs).by_id.get(job_id).map(job_record)
    }

    pub fn subscription_records(&self) -> Vec<SubscriptionRecord> {
        lock(&self.subscriptions)
            .list
            .iter()
            .map(|s| SubscriptionRecord {
                subscribe_id: s.id,
                public_id: s.public_id.clone(),
                bot_id: s.bot_id.clone(),
                event: s.event.clone(),
                callback_endpoint: redact_url(&s.callback_endpoint),
                language: s.language.code().to_string(),
            })
            .collect()
    }
}

fn job_record(j: &Job) -> JobRecord {
    JobRecord {
        job_id: j.job_id.clone(),
        public_id: j.public_id.clone(),
        bot_id: j.bot_id.clone(),
        bot_name: j.bot_name.clone(),
        status: j.status,
        start_time: rfc3339_secs(j.start),
        end_time: j.end.map(rfc3339_millis),
        suspended: j.suspended,
        output: j.output.clone(),
        callback_endpoint: j.callback_endpoint.as_deref().map(redact_url),
        callback_tries: j.callback_tries,
        origin: j.origin,
        suspended_at: j.suspended_at.map(rfc3339_millis),
        suspended_by_request: j.suspended_by_request,
        held_for_callback: j.held,
    }
}

/// The Job object of the API (§2.1): `code`, ids, status, times, message, `output` when
/// finished and asked for, `cast_url`.
pub(crate) fn job_json(j: &Job, code: u16, lang: Lang, with_output: bool, base_url: &str) -> Value {
    // A held job's time runs on until its callback is acknowledged ("callback-retry time
    // counts in the execution time").
    let end = if j.held { None } else { j.end };
    let elapsed = (end.unwrap_or_else(Utc::now) - j.start)
        .num_seconds()
        .max(0);
    let status = j.visible_status();
    let message = match (status, j.suspended, &j.error_message) {
        (2, _, _) => lang.pick("BOTを実行中です", "The BOT is executing"),
        (0, _, _) => lang.pick(
            "BOTの実行が正常に終了しました",
            "The BOT finished successfully",
        ),
        (_, true, _) => lang.pick("ジョブは停止されました", "The job was suspended"),
        (_, _, Some(m)) => m.clone(),
        _ => lang.pick("BOTの実行がエラーで終了しました", "The BOT ended in error"),
    };
    let mut v = json!({
        "code": code,
        "job_id": j.job_id,
        "bot_id": j.bot_id,
        "bot_name": j.bot_name,
        "status": status,
        "start_time": rfc3339_secs(j.start),
        "elapsed_time": elapsed,
        "message": message,
        "cast_url": format!("{base_url}/__emulator/jobs/{}", j.job_id),
    });
    if let (true, false, Some(out), Value::Object(m)) = (with_output, j.held, &j.output, &mut v) {
        m.insert("output".into(), out.clone());
    }
    v
}
