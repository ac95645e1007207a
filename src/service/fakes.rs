//! In-memory stand-ins shared by the flows' unit tests (test builds only): the run ledger, the
//! job-finished events bus, a Cloud BOT job that a DELETE suspends, and a callback waiting for
//! its job. One copy here, so that each flow's tests say only what is their own.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::callback::fake::{Shared, token};
use crate::callback::{CallbackId, Callbacks};
use crate::idempotency::RecordKey;
use crate::job_events::{DetailType, Event, EventBus, PublishError, PutFuture};
use crate::ledger::{LedgerStore, RecordedStart, RunKey, RunWrite, Written};
use crate::request::{Operation, Request};
use crate::table::{StoreError, StoreFuture};

/// Suspend marks in the order they were set (`Some(status)`) or taken away (`None`).
pub(crate) type Marks = Arc<Mutex<Vec<Option<&'static str>>>>;

/// A run ledger in memory: every write kept, a run's end recorded once (like the table's
/// condition), a run's maximum run time the one its start recorded, else `fallback_max`
/// (or a failed read when `max_unreadable`), and every suspend mark kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryLedger {
    writes: Arc<Mutex<Vec<RunWrite>>>,
    marks: Marks,
    fallback_max: Option<u64>,
    max_unreadable: bool,
}

impl MemoryLedger {
    /// A ledger whose runs without a recorded maximum read as `max_run_s`.
    pub(crate) fn with_max_run_s(max_run_s: Option<u64>) -> Self {
        Self {
            fallback_max: max_run_s,
            ..Self::default()
        }
    }

    /// A ledger whose maximum run times cannot be read (the table throttled).
    pub(crate) fn max_unreadable() -> Self {
        Self {
            max_unreadable: true,
            ..Self::default()
        }
    }

    /// Every write so far, in order.
    pub(crate) fn writes(&self) -> Vec<RunWrite> {
        self.writes.lock().unwrap().clone()
    }

    /// Every suspend mark set (`Some(status)`) or taken away (`None`), in order.
    pub(crate) fn marks(&self) -> Vec<Option<&'static str>> {
        self.marks.lock().unwrap().clone()
    }

    /// The marks themselves, for a stand-in that looks at them when the suspend arrives.
    pub(crate) fn marks_handle(&self) -> Marks {
        Arc::clone(&self.marks)
    }

    /// The statuses of the ends written, in order.
    pub(crate) fn ends(&self) -> Vec<&'static str> {
        let writes = self.writes.lock().unwrap();
        writes
            .iter()
            .filter_map(|w| w.end.as_ref().map(|e| e.status))
            .collect()
    }
}

impl LedgerStore for MemoryLedger {
    fn write<'a>(&'a self, write: &'a RunWrite) -> StoreFuture<'a, Written> {
        Box::pin(async move {
            let mut writes = self.writes.lock().unwrap();
            let ended_before = writes.iter().any(|w| w.run == write.run && w.end.is_some());
            if write.end.is_some() && ended_before {
                return Ok(Written::AlreadyEnded);
            }
            writes.push(write.clone());
            Ok(Written::Noted {
                ended: write.end.is_some(),
                recorded: RecordedStart::default(),
            })
        })
    }

    fn max_run_s<'a>(&'a self, run: &'a RunKey) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            if self.max_unreadable {
                return Err(StoreError::Unavailable("throttled".into()));
            }
            let writes = self.writes.lock().unwrap();
            Ok(writes
                .iter()
                .filter(|w| &w.run == run)
                .find_map(|w| w.origin.as_ref().and_then(|o| o.max_run_s))
                .or(self.fallback_max))
        })
    }

    fn mark_suspending<'a>(
        &'a self,
        _: &'a RunKey,
        status: Option<&'static str>,
    ) -> StoreFuture<'a, ()> {
        self.marks.lock().unwrap().push(status);
        Box::pin(async { Ok(()) })
    }
}

/// An events bus that keeps what it is given, or refuses everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryBus {
    events: Arc<Mutex<Vec<Event>>>,
    refusing: bool,
}

impl MemoryBus {
    /// A bus that refuses every put, as a throttled EventBridge would.
    pub(crate) fn refusing() -> Self {
        Self {
            refusing: true,
            ..Self::default()
        }
    }

    /// Every event put so far, in order.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Every event put so far as its detail type and parsed detail.
    pub(crate) fn details(&self) -> Vec<(DetailType, Value)> {
        self.events()
            .iter()
            .map(|e| (e.detail_type, serde_json::from_str(&e.detail).unwrap()))
            .collect()
    }
}

impl EventBus for MemoryBus {
    fn put<'a>(&'a self, event: &'a Event) -> PutFuture<'a> {
        Box::pin(async move {
            if self.refusing {
                return Err(PublishError(
                    "EventBridge PutEvents refused the entry: ThrottlingException".into(),
                ));
            }
            self.events.lock().unwrap().push(event.clone());
            Ok(())
        })
    }
}

/// Cloud BOT with job j1 of contract `demo` read as `first` once, then as `suspended`; its
/// DELETE (the suspend) answered `suspend_status`, with `suspended` when that is 200.
pub(crate) async fn suspendable_job(
    first: Value,
    suspended: Value,
    suspend_status: u16,
) -> MockServer {
    suspendable_job_seen(
        first,
        suspended,
        suspend_status,
        Marks::default(),
        Marks::default(),
    )
    .await
}

/// [`suspendable_job`] whose DELETE copies into `seen` the suspend `marks` as they were when
/// it arrived (what a callback recorded during the suspend would find).
pub(crate) async fn suspendable_job_seen(
    first: Value,
    suspended: Value,
    suspend_status: u16,
    marks: Marks,
    seen: Marks,
) -> MockServer {
    let server = MockServer::start().await;
    let answer = match suspend_status {
        200 => ResponseTemplate::new(200).set_body_json(suspended.clone()),
        status => ResponseTemplate::new(status).set_body_json(serde_json::json!({"code": status})),
    };
    Mock::given(method("DELETE"))
        .and(path("/demo/jobs/j1"))
        .respond_with(SeenAtSuspend {
            answer,
            marks,
            seen,
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/demo/jobs/j1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/demo/jobs/j1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(suspended))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

/// Cloud BOT's answer to the DELETE, keeping the run's suspend marks as they were when it came.
struct SeenAtSuspend {
    answer: ResponseTemplate,
    marks: Marks,
    seen: Marks,
}

impl wiremock::Respond for SeenAtSuspend {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let now = self.marks.lock().unwrap().clone();
        *self.seen.lock().unwrap() = now;
        self.answer.clone()
    }
}

/// How many suspends (DELETEs) `server` received.
pub(crate) async fn suspends(server: &MockServer) -> usize {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .count()
}

/// A callback of the open task `task_token` (in `callbacks`' fake Step Functions, `shared`)
/// registered under the key `k`, its job recorded at j1 of `server`: Cloud BOT's callback
/// request for it, and the callback's raw id (a secret, for the tests that look for it).
pub(crate) async fn waiting_callback(
    callbacks: &Callbacks,
    shared: &Shared,
    server: &MockServer,
    task_token: &str,
) -> (Request, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let key = RecordKey::request("k").unwrap();
    let registered = callbacks
        .register(&key, &token(task_token), deadline)
        .await
        .unwrap();
    let job = format!("{}/demo/jobs/j1", server.uri());
    callbacks.job_started(&registered, &job, deadline).await;
    shared.open(task_token);
    let raw_id = registered.url.rsplit('/').next().unwrap().to_owned();
    let request = Request {
        operation: Operation::Callback {
            id: Some(CallbackId::parse(&raw_id).unwrap()),
        },
        language: crate::cloudbot::Language::Ja,
    };
    (request, raw_id)
}
