//! The docs stay in step with the code: the error table (docs/errors.md) and the sample list
//! (docs/contract.md).

use cloudbot_trigger::outcome::ERROR_TABLE;

use super::events_dir;

fn doc(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_error_type_is_documented_with_its_status_and_retry_safety() {
    let docs = doc("docs/errors.md");
    for (error_type, status, retryable, _) in ERROR_TABLE {
        let row = format!(
            "| `{error_type}` | {status} | {} |",
            if *retryable { "yes" } else { "no" }
        );
        assert!(docs.contains(&row), "docs/errors.md lacks the row {row}");
    }
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
