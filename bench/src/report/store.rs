//! Markdown for the idempotency-store scenario: cold init with and without the DynamoDB client,
//! the warm keyed execute against the plain one, and the store calls per execute.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::Report;
use crate::stats::{Summary, ms, ms_minus};

/// Budget: the DynamoDB client may add this much to the median cold init.
pub const BUDGET_COLD_DELTA: Duration = Duration::from_micros(300);
/// Budget: store writes per execute on the happy path (a claim and its completion).
pub const BUDGET_WRITES: f64 = 2.0;

/// What the store scenario measured.
#[derive(Debug, Clone)]
pub struct StoreFigures {
    /// Cold init without a table (no DynamoDB client).
    pub cold_without: Summary,
    /// Cold init with the table (DynamoDB client built from the shared SDK configuration).
    pub cold_with: Summary,
    /// Warm keyed executes with the store.
    pub warm: Summary,
    /// The stand-in as a direct keep-alive client sees one call.
    pub direct: Summary,
    /// The stand-in's nominal latency.
    pub latency: Duration,
    /// Keyed executes made (first + warm).
    pub executes: usize,
    /// Store calls they made (without the init's warm-up read).
    pub calls: cloudbot_testkit::dynamodb::StoreCalls,
    /// Reads the warm sandbox made during init (the DynamoDB warm-up: 1 expected).
    pub init_reads: u64,
}

impl StoreFigures {
    /// Median cold init with the client minus without it (negative: noise).
    pub fn cold_delta_ms(&self) -> f64 {
        (self.cold_with.p50.as_secs_f64() - self.cold_without.p50.as_secs_f64()) * 1000.0
    }

    /// Store writes and reads per keyed execute.
    pub fn per_execute(&self) -> (f64, f64) {
        let n = self.executes.max(1) as f64;
        let writes = (self.calls.put_item + self.calls.update_item) as f64;
        (writes / n, self.calls.get_item as f64 / n)
    }

    /// Warm keyed p50 minus the plain warm p50 minus two direct store round trips: what the
    /// store costs the function beyond the store's own latency.
    fn own_share(&self, plain: &Summary) -> f64 {
        (self.warm.p50.as_secs_f64()
            - plain.p50.as_secs_f64()
            - 2.0 * self.direct.p50.as_secs_f64())
            * 1000.0
    }
}

/// The budget rows of the store (appended to the budget table).
pub(super) fn budget_rows(s: &mut String, r: &Report) -> fmt::Result {
    let st = &r.store;
    let delta = st.cold_delta_ms();
    let (writes, reads) = st.per_execute();
    let ok_cold = delta <= BUDGET_COLD_DELTA.as_secs_f64() * 1000.0;
    writeln!(
        s,
        "| cold init with the idempotency table's DynamoDB client | ≤ +{} ms | {delta:+.2} ms ({} vs {} ms median) | {} |",
        ms(BUDGET_COLD_DELTA),
        ms(st.cold_with.p50),
        ms(st.cold_without.p50),
        if ok_cold { "met" } else { "**not met**" }
    )?;
    writeln!(
        s,
        "| store calls per keyed execute | {BUDGET_WRITES:.0} writes, 0 reads | {writes:.2} writes, {reads:.2} reads | {} |",
        if (writes - BUDGET_WRITES).abs() < f64::EPSILON && reads == 0.0 {
            "met"
        } else {
            "**not met**"
        }
    )
}

/// The section.
pub(super) fn store(s: &mut String, r: &Report) -> fmt::Result {
    let st = &r.store;
    writeln!(
        s,
        "## 6. Idempotency store (DynamoDB stand-in, {} ms per call)\n",
        ms(st.latency)
    )?;
    writeln!(
        s,
        "Cold init of the same bootstrap with and without `CLOUDBOT_IDEMPOTENCY_TABLE` (with it, \
         the DynamoDB client is built from the shared SDK configuration), {} starts each, \
         alternating. Then 1 + {} keyed executes (each its own `idempotency_key`: a claim, the \
         POST, the completion) against a local DynamoDB stand-in that answers every call after a \
         fixed {} ms, beside the plain executes of section 2.\n",
        st.cold_with.n,
        st.executes - 1,
        ms(st.latency)
    )?;
    writeln!(
        s,
        "| what | n | min ms | p50 ms | p90 ms | p99 ms | max ms |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|---|")?;
    for (what, x) in [
        ("cold init, no table", &st.cold_without),
        ("cold init, table configured", &st.cold_with),
        ("warm execute, plain (section 2)", &r.warm.warm),
        ("warm execute, keyed (claim + complete)", &st.warm),
        ("direct keep-alive client → stand-in PutItem", &st.direct),
    ] {
        writeln!(
            s,
            "| {what} | {} | {} | {} | {} | {} | {} |",
            x.n,
            ms(x.min),
            ms(x.p50),
            ms(x.p90),
            ms(x.p99),
            ms(x.max)
        )?;
    }
    let (writes, reads) = st.per_execute();
    writeln!(
        s,
        "\nCold init difference of medians: {:+.2} ms. Keyed minus plain warm execute: p50 {} ms, \
         p99 {} ms; minus two direct store round trips (p50 {} ms each), the store's cost to the \
         function itself: {:.2} ms at p50. Store calls over {} keyed executes: {} PutItem, {} \
         UpdateItem, {} GetItem, {} other ({writes:.2} writes and {reads:.2} reads per execute); \
         during init, {} GetItem (the DynamoDB warm-up).\n",
        st.cold_delta_ms(),
        ms_minus(st.warm.p50, r.warm.warm.p50),
        ms_minus(st.warm.p99, r.warm.warm.p99),
        ms(st.direct.p50),
        st.own_share(&r.warm.warm),
        st.executes,
        st.calls.put_item,
        st.calls.update_item,
        st.calls.get_item,
        st.calls.other,
        st.init_reads,
    )
}
