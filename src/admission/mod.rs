//! Admission control (issue 23; docs/queue.md, "Admission control"): a per-contract cap on the
//! BOT jobs **running** at Cloud BOT, for every run that goes through the run queue. A run queue
//! message takes a slot of its contract before its execute is sent; the slot is attached to the
//! job the execute started and released when the run ledger records the job's end (the one
//! place every end passes: callback, poll, overrun), at once when the execute provably started
//! nothing, and by the sweep for a run that ended without word. An execute whose outcome is
//! unknown keeps its slot (a job may be running) until an operator releases it.
//!
//! - `rules`: caps, the slots a lane may take, the growing wait (pure).
//! - `slot`: the slot item and its key.
//! - `dynamodb`: the slots as items of the run ledger table (the only SDK types but SQS's).
//! - `visibility`: a waiting message put back with its delay, and the run queue's SQS client
//!   (also the dead-letter move, src/service/dead_letter.rs).

mod dynamodb;
mod rules;
mod slot;
mod visibility;

use std::fmt::Debug;

use tokio::time::Instant;

pub use dynamodb::SlotTable;
pub use rules::{Caps, FIRST_WAIT, MAX_CAP, MAX_WAIT, candidates, parse_caps, wait_delay};
pub use slot::{Hold, SLOT_PREFIX, Slot, SlotKey, Taking, attribute};
pub use visibility::{DeadLetterReason, Visibility, queue_url};

use crate::cloudbot::PublicId;
use crate::table::{StoreError, StoreFuture, bounded, now_ms};
use crate::trigger::Lane;

/// Where slots are kept.
pub trait SlotStore: Send + Sync + Debug {
    /// Takes `key` unless it is taken: `false` when it was.
    fn take<'a>(&'a self, key: &'a SlotKey, taking: &'a Taking<'a>) -> StoreFuture<'a, bool>;

    /// Notes on the slot `key` held by `token` the run it holds (`Some((run, job_endpoint))`),
    /// or that the execute's outcome is unknown (`None`): `false` when `token` no longer
    /// holds it.
    fn note<'a>(
        &'a self,
        key: &'a SlotKey,
        token: &'a str,
        run: Option<(&'a str, &'a str)>,
    ) -> StoreFuture<'a, bool>;

    /// Releases `key` if `token` holds it: `false` when it did not.
    fn release<'a>(&'a self, key: &'a SlotKey, token: &'a str) -> StoreFuture<'a, bool>;

    /// The taken slots of `public_id` among its `cap` (one read).
    fn list<'a>(&'a self, public_id: &'a PublicId, cap: u32) -> StoreFuture<'a, Vec<Slot>>;
}

/// What asking for a slot gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The contract is uncapped: nothing to hold.
    Uncapped,
    /// This slot is held now.
    Held(Hold),
    /// Every slot the lane may take is taken.
    Full {
        /// The contract's cap.
        cap: u32,
    },
}

/// The slots and the caps. Built once per sandbox.
#[derive(Debug)]
pub struct Admission {
    store: Box<dyn SlotStore>,
    caps: Caps,
}

impl Admission {
    /// Admission on `store` with `caps`.
    pub fn new(store: impl SlotStore + 'static, caps: Caps) -> Self {
        Self {
            store: Box::new(store),
            caps,
        }
    }

    /// The caps.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// Takes a slot of `public_id` for the request keyed `holder` from `lane`: the first free
    /// one of the lane's candidates, starting at `spread` (one conditional put per slot tried).
    pub async fn take(
        &self,
        public_id: &PublicId,
        lane: Lane,
        holder: &str,
        spread: u32,
        deadline: Instant,
    ) -> Result<Taken, StoreError> {
        let cap = self.caps.of(public_id);
        if cap == 0 {
            return Ok(Taken::Uncapped);
        }
        let taken_at_ms = now_ms();
        let token = format!("{holder}@{taken_at_ms}");
        let taking = Taking {
            token: &token,
            holder,
            lane: lane.name(),
            taken_at_ms,
        };
        for n in candidates(cap, self.caps.reserved_of(cap), lane, spread) {
            let key = SlotKey {
                public_id: public_id.clone(),
                n,
            };
            if bounded(deadline, self.store.take(&key, &taking)).await? {
                return Ok(Taken::Held(Hold {
                    key,
                    token: token.clone(),
                }));
            }
        }
        Ok(Taken::Full { cap })
    }

    /// Attaches `hold` to the run it started.
    pub async fn attach(
        &self,
        hold: &Hold,
        run: &str,
        job_endpoint: &str,
        deadline: Instant,
    ) -> Result<bool, StoreError> {
        let note = self
            .store
            .note(&hold.key, &hold.token, Some((run, job_endpoint)));
        bounded(deadline, note).await
    }

    /// Marks `hold` as held by an execute whose outcome is unknown.
    pub async fn mark_unknown(&self, hold: &Hold, deadline: Instant) -> Result<bool, StoreError> {
        bounded(deadline, self.store.note(&hold.key, &hold.token, None)).await
    }

    /// Releases `hold`.
    pub async fn release(&self, hold: &Hold, deadline: Instant) -> Result<bool, StoreError> {
        bounded(deadline, self.store.release(&hold.key, &hold.token)).await
    }

    /// Releases the slot of `public_id` that holds the run `run` (`<public_id>/<job_id>`), if
    /// one does: the end of a run (one read, and one conditional delete when found).
    pub async fn release_run(
        &self,
        public_id: &PublicId,
        run: &str,
        deadline: Instant,
    ) -> Result<Option<SlotKey>, StoreError> {
        let slots = self.slots(public_id, deadline).await?;
        let Some(slot) = slots.iter().find(|s| s.job_run.as_deref() == Some(run)) else {
            return Ok(None);
        };
        let released = self.release(&slot.hold(), deadline).await?;
        Ok(released.then(|| slot.key.clone()))
    }

    /// The taken slots of `public_id`.
    pub async fn slots(
        &self,
        public_id: &PublicId,
        deadline: Instant,
    ) -> Result<Vec<Slot>, StoreError> {
        let cap = self.caps.of(public_id);
        bounded(deadline, self.store.list(public_id, cap)).await
    }
}

#[cfg(test)]
pub(crate) mod memory {
    //! Slots in memory, with the conditions of the table's: for the service's tests.

    use std::sync::{Arc, Mutex};

    use super::*;

    /// Every taken slot.
    #[derive(Debug, Clone, Default)]
    pub struct MemorySlots(pub Arc<Mutex<Vec<Slot>>>);

    impl SlotStore for MemorySlots {
        fn take<'a>(&'a self, key: &'a SlotKey, taking: &'a Taking<'a>) -> StoreFuture<'a, bool> {
            Box::pin(async move {
                let mut slots = self.0.lock().unwrap();
                if slots.iter().any(|s| &s.key == key) {
                    return Ok(false);
                }
                slots.push(Slot {
                    key: key.clone(),
                    token: taking.token.to_owned(),
                    holder: taking.holder.to_owned(),
                    taken_at_ms: taking.taken_at_ms,
                    job_run: None,
                    job_endpoint: None,
                    outcome_unknown: false,
                });
                Ok(true)
            })
        }

        fn note<'a>(
            &'a self,
            key: &'a SlotKey,
            token: &'a str,
            run: Option<(&'a str, &'a str)>,
        ) -> StoreFuture<'a, bool> {
            Box::pin(async move {
                let mut slots = self.0.lock().unwrap();
                let Some(slot) = slots.iter_mut().find(|s| &s.key == key && s.token == token)
                else {
                    return Ok(false);
                };
                match run {
                    Some((run, endpoint)) => {
                        slot.job_run = Some(run.to_owned());
                        slot.job_endpoint = Some(endpoint.to_owned());
                    }
                    None => slot.outcome_unknown = true,
                }
                Ok(true)
            })
        }

        fn release<'a>(&'a self, key: &'a SlotKey, token: &'a str) -> StoreFuture<'a, bool> {
            Box::pin(async move {
                let mut slots = self.0.lock().unwrap();
                let before = slots.len();
                slots.retain(|s| !(&s.key == key && s.token == token));
                Ok(slots.len() < before)
            })
        }

        fn list<'a>(&'a self, public_id: &'a PublicId, cap: u32) -> StoreFuture<'a, Vec<Slot>> {
            Box::pin(async move {
                let slots = self.0.lock().unwrap();
                let mut listed: Vec<Slot> = slots
                    .iter()
                    .filter(|s| &s.key.public_id == public_id && s.key.n < cap)
                    .cloned()
                    .collect();
                listed.sort_by_key(|s| s.key.n);
                Ok(listed)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::memory::MemorySlots;
    use super::*;

    fn id(raw: &str) -> PublicId {
        PublicId::parse(raw, "t").unwrap()
    }

    fn admission(slots: &MemorySlots) -> Admission {
        Admission::new(
            slots.clone(),
            Caps {
                default: 3,
                per_contract: vec![(id("free"), 0)],
                high_reserved: 1,
            },
        )
    }

    #[tokio::test]
    async fn normal_takes_the_shared_slots_high_the_rest_and_a_release_frees_one() {
        let slots = MemorySlots::default();
        let admission = admission(&slots);
        let deadline = Instant::now() + Duration::from_secs(5);
        let demo = id("demo");
        let take = |lane, holder: &'static str| {
            let admission = &admission;
            let demo = demo.clone();
            async move {
                admission
                    .take(&demo, lane, holder, 0, deadline)
                    .await
                    .unwrap()
            }
        };
        let Taken::Held(first) = take(Lane::Normal, "sqs:a").await else {
            panic!("a slot")
        };
        assert!(matches!(take(Lane::Normal, "sqs:b").await, Taken::Held(_)));
        // The third slot is the high lane's.
        assert_eq!(take(Lane::Normal, "sqs:c").await, Taken::Full { cap: 3 });
        let Taken::Held(high) = take(Lane::High, "sqs:h").await else {
            panic!("the reserved slot")
        };
        assert_eq!(high.key.n, 2);
        assert_eq!(take(Lane::High, "sqs:i").await, Taken::Full { cap: 3 });

        // Attached to its run, the slot is released by the run's end.
        assert!(
            admission
                .attach(&first, "demo/j1", "https://x/demo/jobs/j1", deadline)
                .await
                .unwrap()
        );
        let released = admission
            .release_run(&demo, "demo/j1", deadline)
            .await
            .unwrap();
        assert_eq!(released, Some(first.key.clone()));
        assert_eq!(
            admission
                .release_run(&demo, "demo/j1", deadline)
                .await
                .unwrap(),
            None
        );
        // A stale token releases nothing.
        assert!(!admission.release(&first, deadline).await.unwrap());
        assert!(matches!(take(Lane::Normal, "sqs:c").await, Taken::Held(_)));
        assert_eq!(
            admission
                .take(&id("free"), Lane::Normal, "sqs:f", 0, deadline)
                .await
                .unwrap(),
            Taken::Uncapped
        );
        let holders: Vec<String> = slots
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.holder.clone())
            .collect();
        assert_eq!(holders, ["sqs:b", "sqs:h", "sqs:c"]);
    }
}
