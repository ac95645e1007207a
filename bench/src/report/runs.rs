//! Markdown for issue 22's figure: the DynamoDB calls a run costs and the warm CPU they add,
//! from the CPU model's keyed subjects (the execute: idempotency table alone, and with the run
//! ledger) and from whole runs on both follow paths (`harness/follow.rs`): the calls per run
//! and table against the one list of expected calls (`cloudbot_testkit::run_calls`), flagged
//! when they differ, and the CPU of each step.

use std::fmt::{self, Write as _};
use std::time::Duration;

use cloudbot_testkit::dynamodb::StoreCalls;
use cloudbot_testkit::run_calls::{CALLBACK, POLLED, PathCalls, StepCalls};

use super::{CpuFigures, CpuModel, FollowPath, FollowRow};
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
         over the subject's starts divided by its executes (first, warm and back to back). \
         Whole runs, start to end, follow below.\n"
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
    writeln!(s)?;
    follow_paths(s, &c.follow, c.store_latency)
}

/// `n` calls as `PutItem / UpdateItem / GetItem` per run (`other` named when not 0).
fn per_run(calls: StoreCalls, runs: usize) -> String {
    let r = runs.max(1) as f64;
    let mut text = format!(
        "{:.2} / {:.2} / {:.2}",
        calls.put_item as f64 / r,
        calls.update_item as f64 / r,
        calls.get_item as f64 / r
    );
    if calls.other != 0 {
        text.push_str(&format!(" + {:.2} other", calls.other as f64 / r));
    }
    text
}

/// Expected calls of one run, `PutItem / UpdateItem / GetItem`.
fn exact(c: StoreCalls) -> String {
    format!("{} / {} / {}", c.put_item, c.update_item, c.get_item)
}

fn scaled(c: StoreCalls, n: u64) -> StoreCalls {
    StoreCalls {
        put_item: c.put_item * n,
        update_item: c.update_item * n,
        get_item: c.get_item * n,
        other: c.other * n,
    }
}

/// Whether a path's counts over `runs` runs are what [`PathCalls`] expects, per table.
fn as_expected(path: &FollowPath, expected: &PathCalls, runs: usize, polls: u64) -> bool {
    let n = runs as u64;
    path.idempotency == scaled(expected.run(polls, StepCalls::idempotency_table), n)
        && path.ledger == scaled(expected.run(polls, StepCalls::ledger_table), n)
}

/// A poll's summary's p50, or a dash.
fn p50(s: &Option<crate::stats::Summary>) -> String {
    s.as_ref().map_or("–".to_owned(), |s| ms(s.p50))
}

/// The whole runs' section: counts per path and table, then CPU per step and configuration
/// (`store_latency`: the stand-in's fixed answer time).
pub fn follow_paths(s: &mut String, follow: &[FollowRow], store_latency: Duration) -> fmt::Result {
    writeln!(s, "#### Whole runs on both follow paths\n")?;
    let Some(first) = follow.first() else {
        return writeln!(s, "Not run in this configuration.\n");
    };
    let polls = first.polls_per_run;
    writeln!(
        s,
        "Per CPU-model row and start, three more sandboxes (each throttled as the model's \
         subjects, after one untimed plain execute) make whole runs of `echo_bot` (2 s): *plain* (no store: \
         the execute, {polls} polls while the job runs, the poll that sees the end), *polled* \
         (the template's default stores, the idempotency table and the run ledger: the same \
         steps, keyed) and *callback* (the same stores and callbacks on: an execute with a task \
         token, then Cloud BOT's callback delivered to the callback route after the job ended, \
         which tells Step Functions). The stores are one HTTPS DynamoDB stand-in that keeps \
         items (reads return what was written, conditions evaluated as DynamoDB does), answering \
         after {} ms and counting per table; Step Functions is a counting stand-in. *Expected* is \
         the list the behaviour test `lambda::store_calls` checks too \
         (`cloudbot_testkit::run_calls`; what each call is for: \
         [docs/benchmarks.md](docs/benchmarks.md#store-calls-per-run-issue-22)).\n",
        ms(store_latency)
    )?;
    writeln!(
        s,
        "| path | runs | idempotency table per run (PutItem / UpdateItem / GetItem) | run ledger per run | Step Functions tasks told per run | expected per run: idempotency table; ledger; tasks told | counts |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|---|")?;
    type Pick = fn(&FollowRow) -> &FollowPath;
    // The last item: Step Functions tasks told per run (the callback's one SendTaskSuccess).
    let paths: [(&str, Pick, Option<&PathCalls>, u64); 3] = [
        ("plain (no store)", |r| &r.plain, None, 0),
        ("polled", |r| &r.polled, Some(&POLLED), 0),
        ("callback", |r| &r.callback, Some(&CALLBACK), 1),
    ];
    for (name, pick, expected, told_per_run) in paths {
        let runs: usize = follow.iter().map(|r| r.runs).sum();
        let sum = |f: fn(&FollowPath) -> StoreCalls| {
            follow
                .iter()
                .map(|r| f(pick(r)))
                .fold(StoreCalls::default(), |a, b| StoreCalls {
                    put_item: a.put_item + b.put_item,
                    update_item: a.update_item + b.update_item,
                    get_item: a.get_item + b.get_item,
                    other: a.other + b.other,
                })
        };
        let told: u64 = follow.iter().map(|r| pick(r).tasks_told).sum();
        let told_ok = follow
            .iter()
            .all(|r| pick(r).tasks_told == told_per_run * r.runs as u64);
        let (expected_text, verdict) = match expected {
            Some(e) => {
                let ok = follow
                    .iter()
                    .all(|r| as_expected(pick(r), e, r.runs, r.polls_per_run));
                (
                    format!(
                        "{}; {}; {told_per_run}",
                        exact(e.run(polls, StepCalls::idempotency_table)),
                        exact(e.run(polls, StepCalls::ledger_table))
                    ),
                    if ok && told_ok {
                        "as expected"
                    } else {
                        "**differ from the expected**"
                    },
                )
            }
            None => {
                let ok = sum(|p| p.idempotency) == StoreCalls::default()
                    && sum(|p| p.ledger) == StoreCalls::default();
                (
                    format!("none; none; {told_per_run}"),
                    if ok && told_ok {
                        "as expected"
                    } else {
                        "**differ from the expected**"
                    },
                )
            }
        };
        writeln!(
            s,
            "| {name} | {runs} | {} | {} | {:.2} | {expected_text} | {verdict} |",
            per_run(sum(|p| p.idempotency), runs),
            per_run(sum(|p| p.ledger), runs),
            told as f64 / runs.max(1) as f64,
        )?;
    }
    writeln!(
        s,
        "\nCPU per step (p50 over every run of the row), and what the store calls add. *Polled \
         adds* = polled − plain whole run (the same steps, keyed, the stores' calls the only \
         difference). *Callback adds* = (callback − plain execute) + (delivery − the plain poll \
         that sees the end): the delivery's difference also holds its one Step Functions call \
         and the record's lookup (a callback run cannot be made without the store).\n"
    )?;
    writeln!(
        s,
        "| memory MB | period ms | execute CPU ms: plain / polled / callback | poll while running: plain / polled | end: plain poll / polled poll / callback delivery | whole run CPU ms: plain / polled / callback | store calls add per run ms: polled / callback |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|---|")?;
    for r in follow {
        let callback_adds = signed(
            r.callback.execute.p50 + r.callback.end.p50,
            r.plain.execute.p50 + r.plain.end.p50,
        );
        writeln!(
            s,
            "| {} | {} | {} / {} / {} | {} / {} | {} / {} / {} | {} / {} / {} | **{}** / **{}** |",
            r.memory_mb,
            r.period.as_millis(),
            ms(r.plain.execute.p50),
            ms(r.polled.execute.p50),
            ms(r.callback.execute.p50),
            p50(&r.plain.poll),
            p50(&r.polled.poll),
            ms(r.plain.end.p50),
            ms(r.polled.end.p50),
            ms(r.callback.end.p50),
            ms(r.plain.run.p50),
            ms(r.polled.run.p50),
            ms(r.callback.run.p50),
            signed(r.polled.run.p50, r.plain.run.p50),
            callback_adds,
        )?;
    }
    writeln!(s)
}

fn signed(a: Duration, b: Duration) -> String {
    super::cpu::signed_ms(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    fn path(idempotency: StoreCalls, ledger: StoreCalls, runs: u64, told: u64) -> FollowPath {
        let one = Summary::of(&[Duration::from_millis(1)]).unwrap();
        FollowPath {
            execute: one,
            poll: Some(one),
            end: one,
            run: one,
            idempotency: scaled(idempotency, runs),
            ledger: scaled(ledger, runs),
            tasks_told: told * runs,
        }
    }

    fn row(polled: FollowPath) -> FollowRow {
        FollowRow {
            memory_mb: 128,
            period: Duration::from_millis(20),
            runs: 3,
            polls_per_run: 2,
            plain: path(StoreCalls::default(), StoreCalls::default(), 3, 0),
            polled,
            callback: path(
                CALLBACK.run(0, StepCalls::idempotency_table),
                CALLBACK.run(0, StepCalls::ledger_table),
                3,
                1,
            ),
        }
    }

    /// The counts are judged against the shared list: as expected when they are its, flagged
    /// when one call more is made on a path.
    #[test]
    fn counts_that_differ_from_the_shared_list_are_flagged() {
        let expected = path(
            POLLED.run(2, StepCalls::idempotency_table),
            POLLED.run(2, StepCalls::ledger_table),
            3,
            0,
        );
        let mut text = String::new();
        follow_paths(
            &mut text,
            &[row(expected.clone())],
            Duration::from_millis(1),
        )
        .unwrap();
        assert!(!text.contains("differ from"), "{text}");
        assert_eq!(text.matches("| as expected |").count(), 3, "{text}");

        let mut one_more = expected;
        one_more.ledger.update_item += 1;
        let mut text = String::new();
        follow_paths(&mut text, &[row(one_more)], Duration::from_millis(1)).unwrap();
        let flagged: Vec<&str> = text.lines().filter(|l| l.contains("differ from")).collect();
        assert_eq!(flagged.len(), 1, "{text}");
        assert!(flagged[0].starts_with("| polled |"), "{text}");

        // A callback run that told no task is flagged too.
        let mut untold = row(expected_polled());
        untold.callback.tasks_told = 0;
        let mut text = String::new();
        follow_paths(&mut text, &[untold], Duration::from_millis(1)).unwrap();
        let flagged: Vec<&str> = text.lines().filter(|l| l.contains("differ from")).collect();
        assert_eq!(flagged.len(), 1, "{text}");
        assert!(flagged[0].starts_with("| callback |"), "{text}");
    }

    fn expected_polled() -> FollowPath {
        path(
            POLLED.run(2, StepCalls::idempotency_table),
            POLLED.run(2, StepCalls::ledger_table),
            3,
            0,
        )
    }
}
