//! README.md stays in step with the code: the error table and the sample list.

use cloudbot_trigger::outcome::ERROR_TABLE;

use super::events_dir;

fn docs() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn every_error_type_is_documented_with_its_status_and_retry_safety() {
    let docs = docs();
    for (error_type, status, retryable, _) in ERROR_TABLE {
        let row = format!(
            "| `{error_type}` | {status} | {} |",
            if *retryable { "yes" } else { "no" }
        );
        assert!(docs.contains(&row), "README.md lacks the row {row}");
    }
}

#[test]
fn every_event_sample_is_documented() {
    let docs = docs();
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            docs.contains(&format!("| `{name}` |")),
            "README.md does not list events/{name}"
        );
    }
}
