//! The DynamoDB adapter of the ledger: each [`RunWrite`] is one `UpdateItem` on the run ledger
//! table (`RunLedgerTable`, partition key `run`), never a read first. The identity and the
//! first-seen time of a status are set only if absent (`if_not_exists`), so writes of one run
//! commute; a write with an end carries `attribute_not_exists(ended_at)`, so exactly one write
//! records it. An `error` end takes the status of a suspend mark when the run has one
//! (`if_not_exists(suspending, …)`: docs/overrun.md, "A callback during the suspend"), so the
//! end the first write records is the truth whichever path writes it. The only code of the
//! ledger that sees SDK types.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::attribute::{
    BOT, CALLER, ENDED_AT, EXECUTION, JOB_ENDPOINT, KEEP_RUNNING, MAX_RUN_S, MONTH, NOMINAL_TIME,
    OPEN, OPEN_KEY, RUN, SCHEDULE, STARTED_AT, STATUS, SUSPENDING,
};
use super::index::OPEN_RUNS;
use super::open::open_key;
use super::run::{End, RunKey, RunWrite};
use super::{KeptInput, LedgerStore, OpenRun, OpenRunStore, RecordedStart, Written};
use crate::cloudbot::JobStatus;
use crate::table::{
    DynamoDbStore, StoreFuture, failed_condition, number_value, string_value, unavailable,
};

/// The value of `open` (a constant: the index `open_runs` has one partition, which the sweep
/// reads; docs/orphans.md).
const OPEN_VALUE: &str = "open";

/// The ledger table on DynamoDB. Cheap to clone: the SDK client and the lean call path
/// (`crate::table`) are shared.
#[derive(Debug, Clone)]
pub struct LedgerTable {
    store: DynamoDbStore,
}

impl LedgerTable {
    /// The table `table` (name or ARN) through `client` (built once, see `sdk.rs`).
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self {
            store: DynamoDbStore::new(client, table),
        }
    }

    /// The ledger on the table of `store` (made with [`DynamoDbStore::on_table`], so a call the
    /// idempotency table's store learned serves the ledger too).
    pub fn on(store: DynamoDbStore) -> Self {
        Self { store }
    }
}

/// An `UpdateItem` expression being built: `SET` clauses with their placeholders.
#[derive(Default)]
struct Expression {
    sets: Vec<String>,
    /// `REMOVE` clauses (the end removes `open`: docs/orphans.md).
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    /// `#n = :n`, or `#n = if_not_exists(#n, :n)` when `keep` (set only if absent).
    fn set(&mut self, attribute: &str, value: AttributeValue, keep: bool) {
        let n = self.names.len();
        let (name, placeholder) = (format!("#a{n}"), format!(":v{n}"));
        self.sets.push(if keep {
            format!("{name} = if_not_exists({name}, {placeholder})")
        } else {
            format!("{name} = {placeholder}")
        });
        self.names.insert(name, attribute.to_owned());
        self.values.insert(placeholder, value);
    }

    /// `#n = if_not_exists(#m, :n)`: the value of `marker` when the record has it, else `value`.
    fn set_unless_marked(&mut self, attribute: &str, marker: &str, value: &str) {
        let n = self.names.len();
        let (name, marker_name, placeholder) =
            (format!("#a{n}"), format!("#a{}", n + 1), format!(":v{n}"));
        self.sets.push(format!(
            "{name} = if_not_exists({marker_name}, {placeholder})"
        ));
        self.names.insert(name, attribute.to_owned());
        self.names.insert(marker_name, marker.to_owned());
        self.values.insert(placeholder, string_value(value));
    }

    /// `REMOVE #n`.
    fn remove(&mut self, attribute: &str) {
        let name = format!("#a{}", self.names.len());
        self.removes.push(name.clone());
        self.names.insert(name, attribute.to_owned());
    }

    /// The `UpdateExpression`.
    fn text_of(&self) -> String {
        let mut text = format!("SET {}", self.sets.join(", "));
        if !self.removes.is_empty() {
            text.push_str(&format!(" REMOVE {}", self.removes.join(", ")));
        }
        text
    }

    fn text(&mut self, attribute: &str, value: &str, keep: bool) {
        self.set(attribute, string_value(value), keep);
    }

    fn number(&mut self, attribute: &str, value: u64, keep: bool) {
        self.set(attribute, number_value(value), keep);
    }
}

/// The expression of `write` (module header).
fn expression_of(write: &RunWrite) -> Expression {
    let mut e = Expression::default();
    e.text(JOB_ENDPOINT, &write.job_endpoint, true);
    e.number(STARTED_AT, write.started_at_ms, true);
    e.text(MONTH, &write.month, true);
    e.number(crate::table::TTL_ATTRIBUTE, write.expires_at_s, true);
    e.number(&write.seen.0, write.seen.1, true);
    if let Some(origin) = &write.origin {
        // The execute that started the run knows its BOT best.
        if let Some(bot) = &write.bot {
            e.text(BOT, bot, false);
        }
        e.text("trigger", origin.trigger, false);
        e.text("request_id", &origin.request_id, false);
        for (attribute, value) in [
            (SCHEDULE, &origin.schedule),
            (NOMINAL_TIME, &origin.nominal_time),
            (EXECUTION, &origin.execution),
            ("request_key", &origin.request_key),
            ("previous_run", &origin.previous_run),
            (CALLER, &origin.caller),
        ] {
            if let Some(value) = value {
                e.text(attribute, value, false);
            }
        }
        if let Some(max) = origin.max_run_s {
            e.number(MAX_RUN_S, max, false);
        }
        if origin.keep_running {
            e.set(KEEP_RUNNING, AttributeValue::Bool(true), false);
        }
        if write.end.is_none() {
            // Open until an end's write removes it (index `open_runs`; docs/orphans.md).
            e.text(OPEN, OPEN_VALUE, false);
            let key = open_key(origin.execution.as_deref(), write.run.as_str());
            e.text(OPEN_KEY, &key, false);
        }
        if let Some(attempt) = origin.attempt {
            e.number("attempt", u64::from(attempt), false);
        }
        match &origin.input {
            KeptInput::Kept(json) => e.text("input", json, false),
            KeptInput::Omitted => e.set("input_omitted", AttributeValue::Bool(true), false),
            KeptInput::NotRecorded => {}
        }
    } else {
        if let Some(bot) = &write.bot {
            e.text(BOT, bot, true);
        }
        if let Some(trigger) = write.trigger_if_unset {
            e.text("trigger", trigger, true);
        }
    }
    match &write.end {
        Some(end) if end.status == JobStatus::Error.label() => {
            // A job this product is suspending reads `error` once suspended: whichever path
            // learns that first (Cloud BOT's callback may beat the suspender's own write)
            // records the suspend's status (docs/overrun.md, "A callback during the suspend").
            e.set_unless_marked(STATUS, SUSPENDING, end.status);
            e.set_unless_marked("end_status", SUSPENDING, end.status);
            end_of(&mut e, end);
        }
        Some(end) => {
            e.text(STATUS, end.status, false);
            e.text("end_status", end.status, false);
            end_of(&mut e, end);
        }
        None => e.text(STATUS, write.status, true),
    }
    e
}

/// The rest of an end's write: when, how long, the message, the run no longer open.
fn end_of(e: &mut Expression, end: &End) {
    e.number(ENDED_AT, end.ended_at_ms, false);
    e.remove(OPEN);
    e.remove(OPEN_KEY);
    e.number("elapsed_s", end.elapsed_s, false);
    if let Some(message) = &end.message {
        e.text("message", message, false);
    }
    if end.output_omitted {
        // Said, so nobody takes the run for one without output; how to fetch it:
        // docs/ledger.md.
        e.set("output_omitted", AttributeValue::Bool(true), false);
    }
}

impl LedgerStore for LedgerTable {
    fn write<'a>(&'a self, write: &'a RunWrite) -> StoreFuture<'a, Written> {
        Box::pin(async move {
            let e = expression_of(write);
            let mut request = self
                .store
                .client()
                .update_item()
                .table_name(self.store.table())
                .key(RUN, string_value(write.run.as_str()))
                .update_expression(e.text_of())
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values));
            if write.end.is_some() {
                // The record after the end's write tells the run's schedule (its start wrote
                // it), for the failure breaker, and its month, for usage: no read of its own.
                request = request
                    .condition_expression("attribute_not_exists(#ended)")
                    .expression_attribute_names("#ended", "ended_at")
                    .return_values(ReturnValue::AllNew);
            }
            match self.store.send_update_item(request).await {
                Ok(output) => Ok(Written::Noted {
                    ended: write.end.is_some(),
                    recorded: output.attributes().map(recorded_start).unwrap_or_default(),
                }),
                Err(err) => match failed_condition(&err) {
                    Some(_) => Ok(Written::AlreadyEnded),
                    None => Err(unavailable("UpdateItem", &err)),
                },
            }
        })
    }

    fn max_run_s<'a>(&'a self, run: &'a RunKey) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            // One attribute, eventually consistent (half a read unit): the start wrote it long
            // before any look that could find the job over its maximum.
            let request = self
                .store
                .client()
                .get_item()
                .table_name(self.store.table())
                .key(RUN, string_value(run.as_str()))
                .projection_expression("#m")
                .expression_attribute_names("#m", MAX_RUN_S);
            let output = self
                .store
                .send_get_item(request)
                .await
                .map_err(|err| unavailable("GetItem", &err))?;
            Ok(output
                .item()
                .and_then(|item| item.get(MAX_RUN_S))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok()))
        })
    }

    fn mark_suspending<'a>(
        &'a self,
        run: &'a RunKey,
        status: Option<&'static str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let request = self
                .store
                .client()
                .update_item()
                .table_name(self.store.table())
                .key(RUN, string_value(run.as_str()))
                // Only an open run of ours: no stray item for a job without a record, and an
                // end already recorded stays as it is.
                .condition_expression("attribute_exists(#r) AND attribute_not_exists(#e)")
                .expression_attribute_names("#r", RUN)
                .expression_attribute_names("#e", ENDED_AT)
                .expression_attribute_names("#s", SUSPENDING);
            let request = match status {
                Some(status) => request
                    .update_expression("SET #s = :s")
                    .expression_attribute_values(":s", string_value(status)),
                None => request.update_expression("REMOVE #s"),
            };
            match self.store.send_update_item(request).await {
                Ok(_) => Ok(()),
                Err(err) if failed_condition(&err).is_some() => Ok(()),
                Err(err) => Err(unavailable("UpdateItem", &err)),
            }
        })
    }
}

impl OpenRunStore for LedgerTable {
    fn of_execution<'a>(&'a self, arn: &'a str) -> StoreFuture<'a, Vec<OpenRun>> {
        Box::pin(async move {
            // One execution starts one run, or one per item of a Map: a few pages at most.
            let prefix = open_key(Some(arn), "");
            let mut runs = Vec::new();
            let mut start = None;
            loop {
                let output = self
                    .store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .index_name(OPEN_RUNS)
                    .key_condition_expression("#o = :o AND begins_with(#k, :k)")
                    .expression_attribute_names("#o", OPEN)
                    .expression_attribute_names("#k", OPEN_KEY)
                    .expression_attribute_values(":o", string_value(OPEN_VALUE))
                    .expression_attribute_values(":k", string_value(&prefix))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|err| unavailable("Query", &err))?;
                runs.extend(output.items().iter().filter_map(open_run));
                match output.last_evaluated_key() {
                    Some(key) if !key.is_empty() => start = Some(key.clone()),
                    _ => break,
                }
            }
            Ok(runs.into_iter().filter(|run| !run.ended).collect())
        })
    }

    fn first<'a>(&'a self, limit: usize) -> StoreFuture<'a, Vec<OpenRun>> {
        Box::pin(async move {
            let output = self
                .store
                .client()
                .query()
                .table_name(self.store.table())
                .index_name(OPEN_RUNS)
                .key_condition_expression("#o = :o")
                .expression_attribute_names("#o", OPEN)
                .expression_attribute_values(":o", string_value(OPEN_VALUE))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|err| unavailable("Query", &err))?;
            Ok(output.items().iter().filter_map(open_run).collect())
        })
    }

    fn close<'a>(&'a self, run: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let sent = self
                .store
                .send_update_item(
                    self.store
                        .client()
                        .update_item()
                        .table_name(self.store.table())
                        .key(RUN, string_value(run))
                        .update_expression("REMOVE #o, #k")
                        .condition_expression("attribute_exists(#ended)")
                        .expression_attribute_names("#o", OPEN)
                        .expression_attribute_names("#k", OPEN_KEY)
                        .expression_attribute_names("#ended", ENDED_AT),
                )
                .await;
            match sent {
                Ok(_) => Ok(()),
                // Not ended after all: it stays open.
                Err(err) if failed_condition(&err).is_some() => Ok(()),
                Err(err) => Err(unavailable("UpdateItem", &err)),
            }
        })
    }
}

/// An open run from an index item (`None` without the run's key or endpoint).
fn open_run(item: &HashMap<String, AttributeValue>) -> Option<OpenRun> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(OpenRun {
        run: text(RUN)?,
        job_endpoint: text(JOB_ENDPOINT)?,
        execution: text(EXECUTION),
        keep_running: item
            .get(KEEP_RUNNING)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        ended: item.contains_key(ENDED_AT),
        started_at_ms: item
            .get(STARTED_AT)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

/// Who started the run, from the record an end's write returned.
fn recorded_start(item: &HashMap<String, AttributeValue>) -> RecordedStart {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    RecordedStart {
        started_at_ms: item
            .get(STARTED_AT)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        bot: text(BOT),
        trigger: text("trigger"),
        schedule: text(SCHEDULE),
        nominal_time: text(NOMINAL_TIME),
        month: text(MONTH),
        end_status: text("end_status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::{ApiBase, JobEndpoint, JobStatus};
    use crate::ledger::run::{Observed, Origin};
    use crate::trigger::Trigger;

    fn write(status: JobStatus, origin: bool) -> RunWrite {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let job = JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-1", "j").unwrap();
        let observed = Observed {
            status,
            bot_id: "echo_bot",
            start_time: None,
            elapsed_s: None,
            message: Some("ok"),
            output_omitted: false,
        };
        let origin = origin.then(|| Origin::of(Trigger::Direct, None, false, None, "req"));
        RunWrite::of(&job, &observed, origin, 1_796_050_800_000, 100)
    }

    fn rendered(e: &Expression) -> String {
        let mut text = e.sets.join(", ");
        for (placeholder, name) in &e.names {
            text = text.replace(&format!("{placeholder} "), &format!("{name} "));
            text = text.replace(&format!("({placeholder},"), &format!("({name},"));
        }
        text
    }

    #[test]
    fn a_start_sets_who_started_it_and_keeps_what_an_earlier_learn_wrote() {
        let text = rendered(&expression_of(&write(JobStatus::Executing, true)));
        for part in [
            "started_at = if_not_exists(started_at,",
            "month = if_not_exists(month,",
            "seen_executing = if_not_exists(seen_executing,",
            "status = if_not_exists(status,",
            "trigger = :",
            "bot = :",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert!(!text.contains("ended_at"), "{text}");
    }

    #[test]
    fn a_start_from_the_api_records_who_signed_it() {
        let mut w = write(JobStatus::Executing, true);
        let text = rendered(&expression_of(&w));
        assert!(!text.contains("caller"), "{text}");
        if let Some(origin) = &mut w.origin {
            origin.caller = Some("arn:aws:iam::123456789012:user/alice".into());
        }
        let e = expression_of(&w);
        assert!(rendered(&e).contains("caller = :"), "{}", rendered(&e));
        assert!(
            e.values
                .values()
                .any(|v| v.as_s().is_ok_and(|s| s.ends_with(":user/alice")))
        );
    }

    #[test]
    fn an_end_sets_the_end_and_a_later_learn_keeps_the_bot() {
        let text = rendered(&expression_of(&write(JobStatus::Error, false)));
        for part in [
            "status = if_not_exists(suspending, :",
            "end_status = if_not_exists(suspending, :",
            "ended_at = :",
            "elapsed_s = :",
            "message = :",
            "bot = if_not_exists(bot,",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert!(!text.contains("trigger"), "{text}");
        assert!(!text.contains("output_omitted"), "{text}");
    }

    #[test]
    fn a_start_opens_the_run_and_its_end_closes_it() {
        let start = expression_of(&write(JobStatus::Executing, true));
        let text = rendered(&start);
        assert!(text.contains("open = :"), "{text}");
        assert!(text.contains("open_key = :"), "{text}");
        assert!(
            start
                .values
                .values()
                .any(|v| v.as_s().is_ok_and(|s| s == "-#demo/j-1"))
        );
        assert!(start.removes.is_empty());
        let end = expression_of(&write(JobStatus::Error, false));
        assert!(!rendered(&end).contains("open"));
        let removed: Vec<&String> = end.removes.iter().map(|n| &end.names[n]).collect();
        assert_eq!(removed, ["open", "open_key"]);
        assert!(end.text_of().contains(" REMOVE "), "{}", end.text_of());
    }

    #[test]
    fn an_outside_run_sets_its_trigger_only_where_no_start_wrote_one() {
        let mut w = write(JobStatus::Succeeded, false);
        w.trigger_if_unset = Some(crate::ledger::OUTSIDE);
        let text = rendered(&expression_of(&w));
        assert!(text.contains("trigger = if_not_exists(trigger,"), "{text}");
        // A start of ours (the execute's write) sets its own, overwriting `outside`.
        let mut start = write(JobStatus::Executing, true);
        start.trigger_if_unset = Some(crate::ledger::OUTSIDE);
        let text = rendered(&expression_of(&start));
        assert!(text.contains("trigger = :"), "{text}");
        assert!(!text.contains("if_not_exists(trigger"), "{text}");
    }

    #[test]
    fn an_end_read_without_its_output_says_so() {
        let mut w = write(JobStatus::Succeeded, false);
        if let Some(end) = &mut w.end {
            end.output_omitted = true;
        }
        let text = rendered(&expression_of(&w));
        assert!(text.contains("output_omitted = :"), "{text}");
    }

    #[test]
    fn only_an_error_end_takes_the_status_of_a_suspend_mark() {
        // A suspended job reads `error`: the mark decides what that end is (docs/overrun.md).
        let error = rendered(&expression_of(&write(JobStatus::Error, false)));
        assert!(
            error.contains("status = if_not_exists(suspending, :"),
            "{error}"
        );
        // A job that succeeded before the suspend reached it succeeded.
        let succeeded = rendered(&expression_of(&write(JobStatus::Succeeded, false)));
        assert!(!succeeded.contains("suspending"), "{succeeded}");
        assert!(succeeded.contains("end_status = :"), "{succeeded}");
        // The suspender's own end write says its status outright.
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        let job = JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-1", "j").unwrap();
        let observed = Observed {
            status: JobStatus::Error,
            bot_id: "echo_bot",
            start_time: None,
            elapsed_s: None,
            message: Some("The job was suspended"),
            output_omitted: false,
        };
        let overrun = RunWrite::overrun(&job, &observed, 1_796_050_800_000, 100);
        let text = rendered(&expression_of(&overrun));
        assert!(!text.contains("suspending"), "{text}");
        assert!(text.contains("end_status = :"), "{text}");
    }
}
