//! Repository hygiene that a reader relies on: Cargo.toml's `rust-version`, and a `//!` header
//! opening every file of the function (the layout is read from those headers).

use std::process::Command;

/// `rust-version` is exactly the highest `rust-version` any locked dependency declares for this
/// platform (others are not downloaded offline): lower would promise builds that fail, higher
/// would turn away toolchains that work.
#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8(rustc.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    let ours = env!("CARGO_PKG_RUST_VERSION");
    let workspace: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let (needed, by) = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !workspace.contains(&p["id"].as_str().unwrap()))
        .filter_map(|p| Some((p["rust_version"].as_str()?, p["name"].as_str()?)))
        .max_by_key(|(v, _)| parse(v))
        .unwrap();
    assert_eq!(
        parse(ours),
        parse(needed),
        "Cargo.toml says rust-version {ours}; the dependencies need {needed} ({by})"
    );
}

/// Every file under `src/` opens with a `//!` header saying what it is responsible for:
/// CONTRIBUTING.md's layout points at these headers, so a file without one is a room missing
/// from the map.
#[test]
fn every_file_of_the_function_opens_with_its_module_header() {
    fn rust_files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20, "{files:?}");
    let headless: Vec<_> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//! "))
        .collect();
    assert!(
        headless.is_empty(),
        "files without a `//!` header: {headless:?}"
    );
}
