//! The docs stay in step with the code: the error table (docs/errors.md, generated from the
//! code's table) and the sample list (docs/contract.md).
//!
//! After changing a row in `src/error/kind.rs`, regenerate the doc's table with
//! `CLOUDBOT_UPDATE_DOCS=1 cargo test --test it error_table`.

use cloudbot_trigger::error::kind;

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

#[test]
fn the_error_table_in_docs_is_the_codes_table() {
    let path = doc_path("docs/errors.md");
    let text = doc("docs/errors.md");
    let expected = markdown_table();
    let header = expected.lines().next().unwrap();
    let range = table_range(&text, header)
        .unwrap_or_else(|| panic!("docs/errors.md has no table starting with {header}"));
    if text[range.clone()] == expected {
        return;
    }
    if std::env::var_os("CLOUDBOT_UPDATE_DOCS").is_some() {
        let mut updated = text.clone();
        updated.replace_range(range, &expected);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "docs/errors.md's table differs from src/error/kind.rs; regenerate it with \
         `CLOUDBOT_UPDATE_DOCS=1 cargo test --test it error_table`.\nexpected:\n{expected}\nfound:\n{}",
        &text[range]
    );
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
