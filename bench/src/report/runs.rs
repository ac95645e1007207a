//! Markdown for issue 22's figure: the DynamoDB calls a run costs and the warm CPU they add to
//! its execute, from the CPU model's keyed subjects (idempotency table alone, and with the run
//! ledger: the template's default stores). What the follow paths add after the execute (the
//! end writes of a polled and of a callback run) is counted by the behaviour tests, not here:
//! the harness runs no follow path; those counts live in docs/benchmarks.md.

use std::fmt::{self, Write as _};

use super::{CpuFigures, CpuModel};
use crate::stats::ms;

/// Calls per event of `f`'s store, as `PutItem / UpdateItem / GetItem`; GetItem per start (the
/// init's warm-up read, not an execute's).
fn per_execute(f: &CpuFigures) -> String {
    let events = f.events.max(1) as f64;
    format!(
        "{:.2} / {:.2} / {:.2} per execute; {:.2} GetItem per start",
        f.store_calls.put_item as f64 / events,
        f.store_calls.update_item as f64 / events,
        // Every start's warm-up read is counted apart.
        f.store_calls.get_item.saturating_sub(f.starts as u64) as f64 / events,
        f.store_calls.get_item as f64 / f.starts.max(1) as f64,
    )
}

/// The section (after the CPU model's store table).
pub(super) fn store_calls_per_run(s: &mut String, c: &CpuModel) -> fmt::Result {
    writeln!(
        s,
        "### Store calls per run and their warm cost (issue 22)\n"
    )?;
    writeln!(
        s,
        "Same rounds as above. *Keyed + ledger*: the keyed subject with the run ledger too \
         (`CLOUDBOT_RUN_LEDGER_TABLE`, the template's default; one more `UpdateItem` per started \
         run, on the same stand-in that keeps its connections). Calls are the stand-in's counts \
         over the subject's starts divided by its executes (first, warm and back to back). The \
         rest of a run is not executed here: the poll or callback that learns the end adds its \
         own writes, counted by the behaviour tests ([docs/benchmarks.md](docs/benchmarks.md#store-calls-per-run-issue-22)).\n"
    )?;
    writeln!(
        s,
        "| memory MB | period ms | calls: keyed (PutItem / UpdateItem / GetItem) | calls: keyed + ledger | warm CPU p50 ms: plain / keyed / keyed + ledger | added to an execute ms: idempotency (2 writes) / ledger (1 write) / all 3 |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|")?;
    for row in &c.rows {
        let plain = row.function.warm_cpu.p50;
        let keyed = row.keyed_alive.warm_cpu.p50;
        let ledger = row.keyed_ledger.warm_cpu.p50;
        writeln!(
            s,
            "| {} | {} | {} | {} | {} / {} / {} | {} / {} / {} |",
            row.memory_mb,
            row.period.as_millis(),
            per_execute(&row.keyed_alive),
            per_execute(&row.keyed_ledger),
            ms(plain),
            ms(keyed),
            ms(ledger),
            super::cpu::signed_ms(keyed, plain),
            super::cpu::signed_ms(ledger, keyed),
            super::cpu::signed_ms(ledger, plain),
        )?;
    }
    writeln!(s)
}
