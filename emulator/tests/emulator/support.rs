//! Shared helpers: start the emulator with the test seed, a small API caller that checks the
//! `code` envelope, a raw HTTP/1.1 exchange for fault tests, and a callback receiver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cloudbot_emulator::{
    AdminClient, DEMO_ACCESS_TOKEN, DEMO_REFER_SECRET, DEMO_REFER_TOKEN, DEMO_SECRET_KEY, Emulator,
    EmulatorOptions, Seed,
};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The test seed's full-permission access token (the same as the demo seed's).
pub const TOKEN: &str = DEMO_ACCESS_TOKEN;
/// Secret key of [`TOKEN`].
pub const SECRET: &str = DEMO_SECRET_KEY;
/// The test seed's Refer-only access token.
pub const REFER_TOKEN: &str = DEMO_REFER_TOKEN;
/// Secret key of [`REFER_TOKEN`].
pub const REFER_SECRET: &str = DEMO_REFER_SECRET;

/// `tests/resources/emulator-seed.json` (short durations, same ids and tokens as the demo).
pub fn seed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/resources/emulator-seed.json")
}

/// The seed at [`seed_path`].
pub fn test_seed() -> Seed {
    Seed::from_file(seed_path()).expect("test seed loads")
}

/// The emulator with the test seed (short durations, 100 ms callback interval).
pub async fn start() -> Emulator {
    Emulator::start(test_seed()).await.expect("emulator starts")
}

/// The emulator with explicit options.
pub async fn start_with(options: EmulatorOptions) -> Emulator {
    Emulator::start_with(options)
        .await
        .expect("emulator starts")
}

/// The admin API of `emulator` over HTTP (what the benchmark and out-of-process tests use).
pub fn admin(emulator: &Emulator) -> AdminClient {
    AdminClient::new(emulator.base_url()).unwrap()
}

/// A caller of the emulated API with fixed credentials and language.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub secret: String,
    pub lang: String,
}

/// An answer: status, headers and the decoded body (every JSON answer must carry `code`).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    /// A caller of `emulator` with the full-permission token, in English.
    pub fn new(emulator: &Emulator) -> Api {
        Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: emulator.base_url(),
            token: TOKEN.into(),
            secret: SECRET.into(),
            lang: "en".into(),
        }
    }

    /// The same caller with other credentials.
    pub fn with_token(mut self, token: &str, secret: &str) -> Api {
        self.token = token.into();
        self.secret = secret.into();
        self
    }

    /// The same caller with another `content-language` value (tests also send empty or unknown ones).
    pub fn with_lang(mut self, lang: &str) -> Api {
        self.lang = lang.into();
        self
    }

    /// A request to `path` with this caller's headers.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("content-language", &self.lang)
            .header("access-token", &self.token)
            .header("secret-key", &self.secret)
    }

    /// Sends `rb` and decodes the answer.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Answer {
        let resp = rb.send().await.expect("request answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
        assert_eq!(body["code"], status, "code mirrors the HTTP status: {body}");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.request(reqwest::Method::POST, path)
                .body(body.to_string()),
        )
        .await
    }

    /// Execute `bot` of the demo contract with `body`.
    pub async fn execute(&self, bot: &str, body: Value) -> Answer {
        self.post(&format!("/demo/bots/{bot}/jobs"), body).await
    }

    /// Polls the job until it is no longer executing.
    pub async fn wait_job(&self, job_id: &str) -> Value {
        for _ in 0..200 {
            let a = self.get(&format!("/demo/jobs/{job_id}")).await;
            assert_eq!(a.status, 200);
            if a.body["status"] != 2 {
                return a.body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("job {job_id} did not end");
    }
}

/// What a raw exchange saw: the bytes received, and whether the read ended in an error.
pub struct Raw {
    pub bytes: Vec<u8>,
    pub error: Option<std::io::ErrorKind>,
}

impl Raw {
    /// The bytes received, as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Body after the header block.
    pub fn body(&self) -> &[u8] {
        let pos = self
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap_or(self.bytes.len());
        &self.bytes[pos..]
    }

    /// The `content-length` header's value, if any.
    pub fn content_length(&self) -> Option<usize> {
        self.text().lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
    }
}

/// Sends one raw HTTP/1.1 request (`Connection: close`) and reads until EOF or error.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: &str,
) -> Raw {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-language: en\r\naccess-token: {TOKEN}\r\nsecret-key: {SECRET}\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Err(_) => panic!("raw read timed out"),
            Ok(Ok(0)) => break None,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break Some(e.kind()),
        }
    };
    Raw { bytes, error }
}

/// A callback endpoint on 127.0.0.1 answering statuses from a script (the last one repeats)
/// and keeping every body it received.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Listens on an ephemeral port; answers with `script`'s statuses in order.
    pub async fn start(script: Vec<u16>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let script = Arc::new(Mutex::new(script));
        let rec = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let rec = Arc::clone(&rec);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let rec = Arc::clone(&rec);
                        let script = Arc::clone(&script);
                        async move {
                            let ct = req
                                .headers()
                                .get("content-type")
                                .map(|v| v.to_str().unwrap().to_string())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            rec.lock().unwrap().push((ct, value));
                            let status = {
                                let mut s = script.lock().unwrap();
                                if s.len() > 1 {
                                    s.remove(0)
                                } else {
                                    s.first().copied().unwrap_or(200)
                                }
                            };
                            let mut resp =
                                hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/callback?token=s3cret-callback-token"),
            received,
            task,
        }
    }

    /// Every request received so far: content-type and JSON body.
    pub fn bodies(&self) -> Vec<(String, Value)> {
        self.received.lock().unwrap().clone()
    }
}

/// Waits until `f` holds (checked every 20 ms, up to `max`).
pub async fn eventually(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = tokio::time::Instant::now();
    while start.elapsed() < max {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
