//! The `cloudbot-emulator` binary: prints its one ready line, serves the seed it was given,
//! ends idle connections as its flags say, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::idle::{read_response, request};
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

/// The `127.0.0.1:PORT` of a ready line.
fn addr_of(line: &str) -> String {
    line.trim_end()
        .strip_prefix("cloudbot-emulator listening on http://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_owned()
}

/// `connections_idle_closed` from the admin API, asked on a connection of its own that closes
/// right after the answer (so it is never idle itself).
async fn idle_closed(addr: &str) -> u64 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /__emulator/stats HTTP/1.1\r\nhost: emulator\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("stats within 10 s")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let stats: serde_json::Value = serde_json::from_str(body).unwrap();
    stats["connections_idle_closed"].as_u64().unwrap()
}

/// Starts the binary with `--idle-timeout-ms 200 --idle-close <close>` and serves one request
/// on a keep-alive connection, which is then left idle.
async fn idle_connection(close: &str) -> (Running, String, TcpStream) {
    let (running, line) = spawn(&[
        "--port",
        "0",
        "--idle-timeout-ms",
        "200",
        "--idle-close",
        close,
    ]);
    let addr = addr_of(&line);
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(request("").as_bytes()).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    (running, addr, s)
}

#[tokio::test]
async fn binary_with_idle_close_fin_closes_an_idle_connection_with_a_fin() {
    let (_running, addr, mut s) = idle_connection("fin").await;
    // The next read ends with EOF (a FIN), not an error (an RST) and not data.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed within 10 s")
        .expect("a clean close, not a reset");
    assert_eq!(n, 0);
    assert_eq!(idle_closed(&addr).await, 1);
}

#[tokio::test]
async fn binary_with_idle_close_silent_drops_an_idle_connection_without_closing_it() {
    let (_running, addr, mut s) = idle_connection("silent").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while idle_closed(&addr).await == 0 {
        assert!(Instant::now() < deadline, "not dropped within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client can still write (no FIN, no RST) but nothing is read or answered.
    s.write_all(request("").as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
    assert!(read.is_err(), "no answer, no close: {read:?}");
}

#[test]
fn idle_flags_are_checked() {
    for (args, message) in [
        (&["--idle-close", "silent"][..], "--idle-timeout-ms"),
        (
            &["--idle-timeout-ms", "200", "--idle-close", "rst"][..],
            "expected fin or silent",
        ),
        (&["--idle-timeout-ms", "soon"][..], "--idle-timeout-ms"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cloudbot-emulator"))
            .args(["--port", "0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn hold_until_callback_ack_flag_starts_in_hold_mode_and_defaults_off() {
    for (args, enabled) in [
        (&["--port", "0", "--hold-until-callback-ack"][..], true),
        (&["--port", "0"][..], false),
    ] {
        let (running, line) = spawn(args);
        let url = line
            .trim_end()
            .strip_prefix("cloudbot-emulator listening on ")
            .unwrap()
            .to_string();
        let v: serde_json::Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{url}/__emulator/callback-hold"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["enabled"], enabled, "{args:?}");
        drop(running);
    }
}
