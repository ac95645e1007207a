//! The idle keep-alive timeout: an idle connection is closed with a FIN, or dropped silently
//! (socket left open, nothing read or answered); a connection serving a request is never idle.

use std::time::Duration;

use cloudbot_emulator::{EmulatorOptions, FAULT_HEADER, IdleClose, LATENCY_HEADER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{SECRET, TOKEN, eventually, start_with, test_seed};

const IDLE: Duration = Duration::from_millis(200);

/// A demo `GET /demo/bots` request, keep-alive, with `extra_headers` (each ending in CRLF).
pub(crate) fn request(extra_headers: &str) -> String {
    format!(
        "GET /demo/bots HTTP/1.1\r\nhost: emulator\r\ncontent-type: application/json\r\ncontent-language: en\r\naccess-token: {TOKEN}\r\nsecret-key: {SECRET}\r\n{extra_headers}\r\n"
    )
}

/// Reads one whole response (head + `content-length` body) from a keep-alive connection.
pub(crate) async fn read_response(s: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("answer within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed before the answer was complete");
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= head_end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_with_a_fin_after_the_timeout() {
    let emu =
        start_with(EmulatorOptions::new(test_seed()).idle_timeout(IDLE, IdleClose::Fin)).await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(request("").as_bytes()).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The next read ends with EOF (a FIN), not an error (an RST) and not data.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed within 10 s")
        .expect("a clean close, not a reset");
    assert_eq!(n, 0);
    assert!(eventually(Duration::from_secs(5), || emu.stats().connections_open == 0).await);
    assert_eq!(emu.stats().connections_idle_closed, 1);
}

#[tokio::test]
async fn a_silently_dropped_connection_stays_open_and_never_answers() {
    let emu =
        start_with(EmulatorOptions::new(test_seed()).idle_timeout(IDLE, IdleClose::Silent)).await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(request("").as_bytes()).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        eventually(Duration::from_secs(5), || emu
            .stats()
            .connections_idle_closed
            == 1)
        .await
    );
    // The client can still write (no FIN, no RST) but nothing is read or answered.
    s.write_all(request("").as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
    assert!(read.is_err(), "no answer, no close: {read:?}");
    let stats = emu.stats();
    assert_eq!((stats.requests, stats.connections_open), (1, 1));
}

#[tokio::test]
async fn a_connection_serving_a_slow_request_is_not_idle() {
    let emu =
        start_with(EmulatorOptions::new(test_seed()).idle_timeout(IDLE, IdleClose::Fin)).await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    let slow = format!("{FAULT_HEADER}: latency\r\n{LATENCY_HEADER}: 600\r\n");
    s.write_all(request(&slow).as_bytes()).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(emu.stats().connections_idle_closed, 0);
    // Reused at once: the idle clock restarted when the answer was written.
    s.write_all(request("").as_bytes()).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(emu.stats().connections_accepted, 1);
}
