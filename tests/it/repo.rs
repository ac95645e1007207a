//! Repository hygiene that a reader of Cargo.toml relies on.

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
