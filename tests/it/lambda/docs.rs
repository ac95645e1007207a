//! The docs stay in step with the code: the error table (docs/errors.md, generated from the
//! code's table), the `Operation` values (docs/operations.md, generated from
//! `metrics::OPERATIONS`) and the sample list (docs/contract.md).
//!
//! After changing a row in `src/error/kind.rs` or `metrics::OPERATIONS`, regenerate the doc's
//! table with `CLOUDBOT_UPDATE_DOCS=1 cargo test --test it docs::`.
//!
//! The operation table is also the list tests/py/test_template.py checks the template against
//! (the dashboard's invocations widget shows each operation): a generated table
//! the Python test reads, rather than a Rust test parsing YAML or Python parsing Rust, so the
//! code stays the one home and each test reads the format it is good at.

use cloudbot_trigger::error::kind;
use cloudbot_trigger::metrics::OPERATIONS;

use super::events_dir;

fn doc_path(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn doc(path: &str) -> String {
    std::fs::read_to_string(doc_path(path)).unwrap()
}

/// The byte range of the first Markdown table that starts with `header` (up to the first line
/// that is not a table row).
fn table_range(text: &str, header: &str) -> Option<std::ops::Range<usize>> {
    let start = text.find(header)?;
    let mut end = start;
    for line in text[start..].split_inclusive('\n') {
        if !line.starts_with('|') {
            break;
        }
        end += line.len();
    }
    Some(start..end)
}

/// The error table as Markdown, as docs/errors.md holds it (and as `CLOUDBOT_UPDATE_DOCS=1`
/// writes it there).
fn markdown_table() -> String {
    let mut out = String::from(
        "| errorType | HTTP (API Gateway) | retryable | meaning |\n|---|---|---|---|\n",
    );
    for kind in kind::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            kind.name,
            kind.http_status,
            if kind.retryable { "yes" } else { "no" },
            kind.meaning
        ));
    }
    out
}

/// Checks that `path` holds `expected` as its table (found by `expected`'s header line), or
/// writes it there with `CLOUDBOT_UPDATE_DOCS` set.
fn keep_generated_table(path: &str, expected: &str, source: &str) {
    let file = doc_path(path);
    let text = doc(path);
    let header = expected.lines().next().unwrap();
    let range = table_range(&text, header)
        .unwrap_or_else(|| panic!("{path} has no table starting with {header}"));
    if text[range.clone()] == *expected {
        return;
    }
    if std::env::var_os("CLOUDBOT_UPDATE_DOCS").is_some() {
        let mut updated = text.clone();
        updated.replace_range(range, expected);
        std::fs::write(&file, updated).unwrap();
        return;
    }
    panic!(
        "{path}'s table differs from {source}; regenerate it with \
         `CLOUDBOT_UPDATE_DOCS=1 cargo test --test it docs::`.\nexpected:\n{expected}\nfound:\n{}",
        &text[range]
    );
}

#[test]
fn the_error_table_in_docs_is_the_codes_table() {
    keep_generated_table("docs/errors.md", &markdown_table(), "src/error/kind.rs");
}

/// The run queue's fate of every error type (docs/queue.md), from `trigger::fate_table`: which
/// error types put a message back and which do not.
#[test]
fn the_queue_fate_table_in_docs_is_the_codes_rule() {
    use cloudbot_trigger::trigger::{Fate, fate_table};

    let mut expected =
        String::from("| errorType | the message | batch item failure |\n|---|---|---|\n");
    for (kind, fate) in fate_table() {
        // A successful move (docs/queue.md says a failed one falls back to a batch item failure).
        let fate = fate.after_move(true);
        let what = match fate {
            Fate::Done => unreachable!("a failure is never done"),
            Fate::Waiting => unreachable!("waiting for a slot is no failure"),
            Fate::Redelivered => "delivered again after its visibility timeout",
            Fate::DeadLettered => unreachable!("moved"),
            Fate::Moved => "moved to the dead-letter queue at once",
            Fate::Unknown => "**deleted, never redelivered**; recorded, counted, alarmed",
        };
        expected.push_str(&format!(
            "| `{}` | {what} | {} |\n",
            kind.name,
            if fate.reported_failed() { "yes" } else { "no" }
        ));
    }
    keep_generated_table(
        "docs/queue.md",
        &expected,
        "trigger::fate_table (src/trigger/batch.rs)",
    );
}

#[test]
fn the_operation_table_in_docs_is_the_codes_list() {
    let mut expected = String::from("| `Operation` | the invocations it counts |\n|---|---|\n");
    for (name, meaning) in OPERATIONS {
        expected.push_str(&format!("| `{name}` | {meaning} |\n"));
    }
    keep_generated_table(
        "docs/operations.md",
        &expected,
        "metrics::OPERATIONS (src/metrics.rs)",
    );
}

/// docs/events.md's detail type table is `job_events::DETAIL_TYPES`.
#[test]
fn the_detail_type_table_in_docs_is_the_codes_list() {
    use cloudbot_trigger::job_events::DETAIL_TYPES;

    let mut expected = String::from("| `detail-type` | announces |\n|---|---|\n");
    for (detail_type, meaning) in DETAIL_TYPES {
        expected.push_str(&format!("| `{}` | {meaning} |\n", detail_type.name()));
    }
    keep_generated_table(
        "docs/events.md",
        &expected,
        "job_events::DETAIL_TYPES (src/job_events/detail.rs)",
    );
}

/// The example rule's pattern in docs/events.md matches what the function puts: its source, a
/// detail type of the code's list, and detail fields the detail has.
#[test]
fn the_example_event_pattern_matches_what_is_put() {
    use cloudbot_trigger::job_events::{DETAIL_TYPES, SOURCE};

    let text = doc("docs/events.md");
    let after = text
        .split("<!-- example-pattern -->")
        .nth(1)
        .expect("docs/events.md has the example pattern");
    let json = after
        .split("```json")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a JSON block after the marker");
    let pattern: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(pattern["source"], serde_json::json!([SOURCE]));
    let names: Vec<&str> = DETAIL_TYPES.iter().map(|(t, _)| t.name()).collect();
    for detail_type in pattern["detail-type"].as_array().unwrap() {
        assert!(
            names.contains(&detail_type.as_str().unwrap()),
            "{detail_type}"
        );
    }
    // Each detail field the pattern matches is a documented field of the detail (its table).
    for (field, values) in pattern["detail"].as_object().unwrap() {
        assert!(
            text.contains(&format!("| `{field}` |")),
            "{field} is not a detail field"
        );
        assert!(
            values.is_array(),
            "EventBridge matches a field against an array"
        );
    }
}

/// The end detail's field table in docs/events.md names exactly the fields the detail has.
#[test]
fn the_end_detail_table_in_docs_is_the_details_fields() {
    use cloudbot_trigger::cloudbot::{ApiBase, JobEndpoint, JobStatus};
    use cloudbot_trigger::job_events::Ended;
    use cloudbot_trigger::ledger::{EndedRun, Observed, RecordedStart, RunWrite};

    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    let job = JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-1", "j").unwrap();
    let observed = Observed {
        status: JobStatus::Succeeded,
        bot_id: "echo_bot",
        start_time: None,
        elapsed_s: Some(1),
        message: None,
        output_omitted: false,
    };
    let write = RunWrite::of(&job, &observed, None, 1_796_050_800_000, 100);
    let run = EndedRun::of(&write, &RecordedStart::default()).unwrap();
    let detail: serde_json::Value = serde_json::from_str(&Ended::of(&run).event().detail).unwrap();
    let mut fields: Vec<String> = detail.as_object().unwrap().keys().cloned().collect();
    fields.sort();

    let text = doc("docs/events.md");
    let range = table_range(&text, "| field | meaning |").unwrap();
    let mut documented: Vec<String> = text[range]
        .lines()
        .skip(2)
        .flat_map(|row| {
            let cell = row.trim_matches('|').split('|').next().unwrap_or_default();
            cell.split(',')
                .map(|f| f.trim().trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    documented.sort();
    assert_eq!(documented, fields, "docs/events.md, the end detail's table");
}

#[test]
fn every_event_sample_is_documented() {
    let docs = doc("docs/contract.md");
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            docs.contains(&format!("| `{name}` |")),
            "docs/contract.md does not list events/{name}"
        );
    }
}

/// Every default docs/deploy.md gives as one `literal` in its variable table is the function's
/// own: the configuration read with all those values set explicitly is the one read with none of
/// them (a wrong value, or one the function rejects, fails here). The template passes only what a
/// deploy decides, so these defaults are what a deployed function runs with.
#[test]
fn the_documented_variable_defaults_are_the_codes() {
    use cloudbot_trigger::config::Config;

    let text = doc("docs/deploy.md");
    let header = "| Variable | Default | Meaning |";
    let range = table_range(&text, header)
        .unwrap_or_else(|| panic!("docs/deploy.md has no table starting with {header}"));
    let mut documented: Vec<(String, String)> = Vec::new();
    for row in text[range].lines().skip(2) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let (Some(name), Some(default)) = (cells.first(), cells.get(1)) else {
            panic!("malformed row {row}");
        };
        let name = name.trim_matches('`').to_owned();
        // `literal` alone, or `literal`; followed by what the template sets.
        let literal = default.split(';').next().unwrap_or_default().trim();
        if literal.len() > 2 && literal.starts_with('`') && literal.ends_with('`') {
            let value = &literal[1..literal.len() - 1];
            assert!(!value.contains('`'), "{name}: one literal, not {literal}");
            documented.push((name, value.to_owned()));
        }
    }
    assert!(
        documented.len() >= 12,
        "the table lost its defaults: {documented:?}"
    );
    let base = [("CLOUDBOT_SECRET_ID", "cloudbot-trigger")];
    let lookup = |extra: &[(String, String)]| {
        let extra = extra.to_vec();
        move |name: &str| -> Option<String> {
            base.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| {
                    extra
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
        }
    };
    let implicit = Config::from_lookup(lookup(&[])).unwrap();
    let explicit = Config::from_lookup(lookup(&documented))
        .unwrap_or_else(|e| panic!("a documented default is rejected: {e}"));
    assert_eq!(
        format!("{explicit:?}"),
        format!("{implicit:?}"),
        "a default in docs/deploy.md differs from the code's: {documented:?}"
    );
}
