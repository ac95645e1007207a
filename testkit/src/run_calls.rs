//! The DynamoDB calls one keyed run makes, start to end, on each follow path, with the
//! template's default stores (the idempotency table, which also holds the callback records, and
//! the run ledger): issue 22's figure. One list for the two places that check it: the behaviour
//! test (`tests/it/lambda/store_calls.rs`, the handler against moto, exact and in order) and
//! the benchmark (`bench/`, the real bootstrap against the DynamoDB stand-in, counted per table,
//! which flags a difference in BENCHMARKS.md). What each call is for: docs/benchmarks.md,
//! "Store calls per run".

use crate::dynamodb::StoreCalls;

/// The calls of one step of a run, per kind of item, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCalls {
    /// Idempotency records (the claim and its completion), on the idempotency table.
    pub records: &'static [&'static str],
    /// Callback records and task pointers, on the same table.
    pub callbacks: &'static [&'static str],
    /// The run ledger.
    pub ledger: &'static [&'static str],
}

fn count(ops: &[&str]) -> StoreCalls {
    let of = |name: &str| ops.iter().filter(|op| **op == name).count() as u64;
    StoreCalls {
        put_item: of("PutItem"),
        update_item: of("UpdateItem"),
        get_item: of("GetItem"),
        other: ops
            .iter()
            .filter(|op| !matches!(**op, "PutItem" | "UpdateItem" | "GetItem"))
            .count() as u64,
    }
}

impl StepCalls {
    /// What the step costs the idempotency table (records and callbacks together).
    pub fn idempotency_table(&self) -> StoreCalls {
        count(&[self.records, self.callbacks].concat())
    }

    /// What the step costs the run ledger table.
    pub fn ledger_table(&self) -> StoreCalls {
        count(self.ledger)
    }
}

/// A follow path: its start, each poll that finds the job still running, and what learns the
/// end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCalls {
    /// The path's name in reports.
    pub path: &'static str,
    /// The keyed execute.
    pub start: StepCalls,
    /// Each poll (`refer_job`) while the job runs (none on the callback path).
    pub each_poll: Option<StepCalls>,
    /// The invocation that learns the end: the poll that sees it, or the callback's delivery.
    pub end: StepCalls,
}

impl PathCalls {
    /// What one run costs a table with `polls` polls while its job runs (`step` picks the
    /// table).
    pub fn run(&self, polls: u64, table: impl Fn(&StepCalls) -> StoreCalls) -> StoreCalls {
        let poll = self.each_poll.as_ref().map(&table).unwrap_or_default();
        let (start, end) = (table(&self.start), table(&self.end));
        let sum = |f: fn(&StoreCalls) -> u64| f(&start) + polls * f(&poll) + f(&end);
        StoreCalls {
            put_item: sum(|c| c.put_item),
            update_item: sum(|c| c.update_item),
            get_item: sum(|c| c.get_item),
            other: sum(|c| c.other),
        }
    }
}

/// Polled with `refer_job` until the job ends (the state machines' polling loop).
pub const POLLED: PathCalls = PathCalls {
    path: "polled",
    // The claim and its completion; the run's start in the ledger.
    start: StepCalls {
        records: &["PutItem", "UpdateItem"],
        callbacks: &[],
        ledger: &["UpdateItem"],
    },
    // A poll that learns nothing new writes nothing: it reads the run's maximum run time.
    each_poll: Some(StepCalls {
        records: &[],
        callbacks: &[],
        ledger: &["GetItem"],
    }),
    // The poll that sees the end: one conditional end write.
    end: StepCalls {
        records: &[],
        callbacks: &[],
        ledger: &["UpdateItem"],
    },
};

/// Started with a task token and ended by Cloud BOT's callback (`.waitForTaskToken`).
pub const CALLBACK: PathCalls = PathCalls {
    path: "callback",
    // The claim and its completion, the callback's record and its task pointer and then its
    // job, the run's start in the ledger.
    start: StepCalls {
        records: &["PutItem", "UpdateItem"],
        callbacks: &["PutItem", "PutItem", "UpdateItem"],
        ledger: &["UpdateItem"],
    },
    each_poll: None,
    // The record found by the id's hash, claimed for settling and marked settled around the
    // one Step Functions call, and the run's end in the ledger.
    end: StepCalls {
        records: &[],
        callbacks: &["GetItem", "UpdateItem", "UpdateItem"],
        ledger: &["UpdateItem"],
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_sums_its_steps_per_table() {
        let polled = POLLED.run(3, StepCalls::ledger_table);
        assert_eq!(
            polled,
            StoreCalls {
                update_item: 2,
                get_item: 3,
                ..StoreCalls::default()
            }
        );
        let callback = CALLBACK.run(0, StepCalls::idempotency_table);
        assert_eq!(
            callback,
            StoreCalls {
                put_item: 3,
                update_item: 4,
                get_item: 1,
                other: 0
            }
        );
    }
}
