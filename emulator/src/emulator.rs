//! The in-process handle: start an emulator on 127.0.0.1, read its URL, observe and steer it
//! without HTTP (typed mirrors of the admin API), stop it.
//!
//! Threading choice: every emulator runs on its OWN thread with its own tokio runtime. So it
//! works the same from a multi-thread or current_thread test runtime, from sync code (the
//! benchmark), and keeps running while the caller's runtime is blocked or its time is paused;
//! timers (job durations, callback intervals) are real time. `Drop` stops it and joins the
//! thread (a few milliseconds).

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::fault::FaultRule;
use crate::idle::{IdleClose, IdlePolicy};
use crate::seed::Seed;
use crate::state::{
    CallbackAttempt, JobRecord, RequestRecord, State, Stats, SubscriptionRecord, lock,
};
use crate::tls::TestCa;

/// Documented minimum interval between callback attempts of the real service.
pub const DEFAULT_CALLBACK_INTERVAL: Duration = Duration::from_secs(30);

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Contracts, BOTs and tokens.
    pub seed: Seed,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Interval between callback attempts; overrides the seed's `callback_interval_ms`
    /// (default 30 s).
    pub callback_interval: Option<Duration>,
    /// Time allowed for one callback attempt (connect + answer). Default 10 s.
    pub callback_timeout: Duration,
    /// Worker threads of the emulator's runtime. Default 1 (enough for thousands of
    /// requests per second; leaves the other core to the code under test).
    pub worker_threads: usize,
    /// When idle keep-alive connections end (closed with a FIN, or dropped silently). Default
    /// `None`: they stay open until the client closes them.
    pub idle: Option<IdlePolicy>,
    /// Serve HTTPS with this test CA's server certificate (base URL `https://127.0.0.1:PORT`).
    /// Default `None`: plain HTTP.
    pub tls: Option<TestCa>,
    /// Start in "hold until callback acknowledged" mode: a job with a `callback_endpoint`
    /// reads as executing until its callback is acknowledged with a 2xx (or every attempt
    /// failed). Default `false`.
    pub hold_for_callback: bool,
}

impl EmulatorOptions {
    /// Options for `seed` on an ephemeral port with defaults.
    pub fn new(seed: Seed) -> EmulatorOptions {
        EmulatorOptions {
            seed,
            port: 0,
            callback_interval: None,
            callback_timeout: Duration::from_secs(10),
            worker_threads: 1,
            idle: None,
            tls: None,
            hold_for_callback: false,
        }
    }

    /// Starts in "hold until callback acknowledged" mode (see the field).
    pub fn hold_for_callback(mut self, enabled: bool) -> Self {
        self.hold_for_callback = enabled;
        self
    }

    /// Sets the port (0 = ephemeral).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Ends keep-alive connections idle for `timeout`, as `close` says.
    pub fn idle_timeout(mut self, timeout: Duration, close: IdleClose) -> Self {
        self.idle = Some(IdlePolicy { timeout, close });
        self
    }

    /// Serves HTTPS with a certificate signed by `ca`.
    pub fn tls(mut self, ca: TestCa) -> Self {
        self.tls = Some(ca);
        self
    }

    /// Sets the interval between callback attempts.
    pub fn callback_interval(mut self, interval: Duration) -> Self {
        self.callback_interval = Some(interval);
        self
    }
}

/// Why an emulator could not start or an admin action failed.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The seed is invalid.
    #[error("invalid seed")]
    Seed(#[from] crate::seed::SeedError),
    /// The port could not be bound on 127.0.0.1.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The requested port.
        port: u16,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime, thread or HTTP client for callbacks could not be created.
    #[error("cannot start the emulator: {0}")]
    Start(String),
    /// A fault rule has invalid parameters.
    #[error("invalid fault rule: {0}")]
    InvalidFault(String),
    /// `rotate_token` named a token the emulator does not know.
    #[error("unknown access token")]
    UnknownToken,
    /// `run_from_console` named no published BOT, or an input it does not accept.
    #[error("console run refused: {0}")]
    ConsoleRun(String),
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops it.
pub struct Emulator {
    state: Arc<State>,
    /// The emulator's runtime, for work started from the caller's thread (console runs).
    runtime: tokio::runtime::Handle,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts `seed` on an ephemeral port of 127.0.0.1 (callback interval from the seed, else 30 s).
    pub async fn start(seed: Seed) -> Result<Emulator, EmulatorError> {
        Emulator::launch(EmulatorOptions::new(seed))
    }

    /// Starts with explicit options.
    pub async fn start_with(options: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        Emulator::launch(options)
    }

    /// Starts from synchronous code (no tokio runtime needed; also fine inside one).
    pub fn start_blocking(options: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        Emulator::launch(options)
    }

    fn launch(options: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        options.seed.validate()?;
        // Bound and listening before this returns: connections made right away wait in the
        // backlog until the server thread accepts them, so no readiness handshake is needed.
        let listener =
            StdListener::bind((Ipv4Addr::LOCALHOST, options.port)).map_err(|source| {
                EmulatorError::Bind {
                    port: options.port,
                    source,
                }
            })?;
        let bind_err = |source| EmulatorError::Bind {
            port: options.port,
            source,
        };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let interval = options
            .callback_interval
            .or(options.seed.callback_interval_ms.map(Duration::from_millis))
            .unwrap_or(DEFAULT_CALLBACK_INTERVAL);
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base_url = format!("{scheme}://{addr}");
        let state = Arc::new(
            State::new(
                options.seed,
                interval,
                options.callback_timeout,
                options.idle,
                options.tls.as_ref().map(TestCa::acceptor),
                base_url,
                options.hold_for_callback,
            )
            .map_err(|e| EmulatorError::Start(format!("callback HTTP client: {e}")))?,
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name("cloudbot-emulator")
            .enable_all()
            .build()
            .map_err(|e| EmulatorError::Start(format!("runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel();
        let server_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("cloudbot-emulator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => crate::server::serve(l, server_state, stopped).await,
                        Err(e) => tracing::error!(error = %e, "cannot register the listener"),
                    }
                });
                // Cancels connection, timer and callback tasks; nothing blocking runs here.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| EmulatorError::Start(format!("thread: {e}")))?;
        tracing::info!(%addr, "cloudbot-emulator started");
        Ok(Emulator {
            state,
            runtime: handle,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS; no trailing slash).
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed it runs.
    pub fn seed(&self) -> &Seed {
        &self.state.seed
    }

    /// Interval between callback attempts in effect.
    pub fn callback_interval(&self) -> Duration {
        self.state.callback_interval
    }

    /// API requests in the order they were answered; `seq` is the arrival order
    /// (`GET /__emulator/requests`; the last 100 000 are kept).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.requests).iter().cloned().collect()
    }

    /// Counters (`GET /__emulator/stats`).
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// All jobs, in creation order (`GET /__emulator/jobs`).
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.state.job_records()
    }

    /// Jobs of `public_id` executing now.
    pub fn running_jobs(&self, public_id: &str) -> usize {
        let jobs = lock(&self.state.jobs);
        jobs.running.get(public_id).copied().unwrap_or(0)
    }

    /// The most jobs of `public_id` executing at once since the start or the last reset.
    pub fn peak_running_jobs(&self, public_id: &str) -> usize {
        let jobs = lock(&self.state.jobs);
        jobs.peak_running.get(public_id).copied().unwrap_or(0)
    }

    /// One job.
    pub fn job(&self, job_id: &str) -> Option<JobRecord> {
        self.state.job_record(job_id)
    }

    /// Callback attempts, in order (`GET /__emulator/callbacks`).
    pub fn callbacks(&self) -> Vec<CallbackAttempt> {
        lock(&self.state.callbacks).clone()
    }

    /// Adds fault rules after the active ones (`POST /__emulator/faults`).
    pub fn add_faults(
        &self,
        rules: impl IntoIterator<Item = FaultRule>,
    ) -> Result<(), EmulatorError> {
        self.state.add_faults(validated(rules)?);
        Ok(())
    }

    /// Replaces the active fault rules.
    pub fn set_faults(
        &self,
        rules: impl IntoIterator<Item = FaultRule>,
    ) -> Result<(), EmulatorError> {
        // Validate first: an invalid list leaves the active rules in place.
        let rules = validated(rules)?;
        self.state.clear_faults();
        self.state.add_faults(rules);
        Ok(())
    }

    /// Active fault rules with their remaining counts (`GET /__emulator/faults`).
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.state.faults).list()
    }

    /// Removes every fault rule (`DELETE /__emulator/faults`).
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Fixed latency added to every API answer (`PUT /__emulator/latency`).
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.state.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Replaces `old_access_token` with a new pair keeping its permissions; the old one then
    /// answers 401 (`POST /__emulator/tokens/rotate`).
    pub fn rotate_token(
        &self,
        old_access_token: &str,
        new_access_token: &str,
        new_secret_key: &str,
    ) -> Result<(), EmulatorError> {
        if self
            .state
            .rotate_token(old_access_token, new_access_token, new_secret_key)
        {
            Ok(())
        } else {
            Err(EmulatorError::UnknownToken)
        }
    }

    /// "BOT done" subscriptions, in creation order (`GET /__emulator/subscriptions`).
    pub fn subscriptions(&self) -> Vec<SubscriptionRecord> {
        self.state.subscription_records()
    }

    /// Starts a job of a published BOT outside the API, as Cloud BOT's console would
    /// (`POST /__emulator/bots/{public_id}/{bot_id}/run`); returns its job id.
    pub fn run_from_console(
        &self,
        public_id: &str,
        bot_id: &str,
        input: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, EmulatorError> {
        // Jobs need the emulator's runtime (their timers run there).
        let _guard = self.runtime.enter();
        let job = crate::admin::console_run(&self.state, public_id, bot_id, input.as_ref())
            .map_err(|(_, m)| EmulatorError::ConsoleRun(m))?;
        Ok(job["job_id"].as_str().unwrap_or_default().to_string())
    }

    /// Pads every job that succeeds from now on with an output value `padding` of `bytes`
    /// ASCII characters (0 = none) (`PUT /__emulator/output-padding`).
    pub fn set_output_padding(&self, bytes: u64) {
        self.state.output_padding.store(bytes, Ordering::Relaxed);
    }

    /// Switches "hold until callback acknowledged" mode (`PUT /__emulator/callback-hold`);
    /// applies to jobs that end from now on.
    pub fn set_hold_for_callback(&self, enabled: bool) {
        self.state
            .hold_for_callback
            .store(enabled, Ordering::Relaxed);
    }

    /// Back to the seed: forgets jobs, requests, callbacks, subscriptions, faults, latency,
    /// output padding, counters and rotated tokens, and restores the callback hold mode it
    /// started with (`POST /__emulator/reset`).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops the server and waits for its thread without blocking the caller's runtime.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The rules as a list, or the first rule's validation error.
fn validated(rules: impl IntoIterator<Item = FaultRule>) -> Result<Vec<FaultRule>, EmulatorError> {
    let rules: Vec<FaultRule> = rules.into_iter().collect();
    match rules.iter().find_map(|r| r.validate().err()) {
        Some(m) => Err(EmulatorError::InvalidFault(m)),
        None => Ok(rules),
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
