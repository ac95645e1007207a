//! The `cloudbot-emulator` binary: prints its one ready line, serves the seed it was given,
//! and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::seed_path;

/// Kills the child by PID on drop, so a failing test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> (Running, String) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudbot-emulator"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "ready in {:?}",
        t.elapsed()
    );
    (running, line)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn binary_prints_its_url_serves_the_seed_and_stops_on_sigterm() {
    let path = seed_path();
    let (mut running, line) = spawn(&[
        "--port",
        "0",
        "--config",
        path.to_str().unwrap(),
        "--callback-interval-ms",
        "50",
    ]);
    let url = line
        .trim_end()
        .strip_prefix("cloudbot-emulator listening on http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let resp = reqwest::Client::new()
        .get(format!("{url}/other/bots"))
        .header("content-type", "application/json")
        .header("content-language", "en")
        .header("access-token", "other-access-token")
        .header("secret-key", "other-secret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the --config seed is served");
    sigterm(&running.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = running.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_without_config_serves_the_demo_seed_and_exits_cleanly_right_after_ready() {
    let (mut running, line) = spawn(&["--port", "0"]);
    assert!(
        line.starts_with("cloudbot-emulator listening on http://127.0.0.1:"),
        "{line}"
    );
    // SIGTERM immediately after the ready line still exits with success.
    sigterm(&running.0);
    let status = running.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_seed_file_fails_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_cloudbot-emulator"))
        .args(["--port", "0", "--config", "/nonexistent/seed.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read seed file"));
}

#[test]
fn print_demo_seed_emits_a_loadable_seed() {
    let out = Command::new(env!("CARGO_BIN_EXE_cloudbot-emulator"))
        .arg("--print-demo-seed")
        .output()
        .unwrap();
    assert!(out.status.success());
    let seed = cloudbot_emulator::Seed::from_json(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(seed, cloudbot_emulator::Seed::demo());
}
