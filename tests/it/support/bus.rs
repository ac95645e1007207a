//! A job-finished events bus in memory for the handler tests: keeps every event it is given,
//! in order (the moto-backed bus is tested on its own in `job_events`).

use std::sync::{Arc, Mutex};

use cloudbot_trigger::job_events::{Event, EventBus, PutFuture};
use serde_json::Value;

/// A bus that keeps what it is given.
#[derive(Debug, Clone, Default)]
pub struct Bus(Arc<Mutex<Vec<Event>>>);

impl EventBus for Bus {
    fn put<'a>(&'a self, event: &'a Event) -> PutFuture<'a> {
        Box::pin(async move {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        })
    }
}

impl Bus {
    /// Every event put so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// The details of every event put so far, parsed.
    pub fn details(&self) -> Vec<Value> {
        self.events()
            .iter()
            .map(|e| serde_json::from_str(&e.detail).unwrap())
            .collect()
    }
}
