//! In-memory stand-ins shared by the flows' unit tests (test builds only): the run ledger and
//! the job-finished events bus. One copy here, so that each flow's tests say only what is their
//! own.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::job_events::{DetailType, Event, EventBus, PublishError, PutFuture};
use crate::ledger::{LedgerStore, RecordedStart, RunKey, RunWrite, Written};
use crate::table::StoreFuture;

/// A run ledger in memory: every write kept, a run's end recorded once (like the table's
/// condition), and a run's maximum run time the one its start recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryLedger {
    writes: Arc<Mutex<Vec<RunWrite>>>,
}

impl MemoryLedger {
    /// Every write so far, in order.
    pub(crate) fn writes(&self) -> Vec<RunWrite> {
        self.writes.lock().unwrap().clone()
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
            let writes = self.writes.lock().unwrap();
            Ok(writes
                .iter()
                .filter(|w| &w.run == run)
                .find_map(|w| w.origin.as_ref().and_then(|o| o.max_run_s)))
        })
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
