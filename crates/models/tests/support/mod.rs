//! A scripted HTTP/1.1 stub of a chat-completions server on 127.0.0.1, started by each test.
//! Every connection serves one request and closes.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ao_core::config::{Config, ConfigInputs, ModelConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const PLANTED_KEY: &str = "sk-planted-test-key-7f3a9c2e51";

/// What the stub does for one request.
#[derive(Clone, Debug)]
pub enum Step {
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        delay: Duration,
    },
    /// Server-sent events: each payload after its pause.
    Stream(Vec<(Duration, String)>),
}

pub fn ok(body: Value) -> Step {
    Step::Reply {
        status: 200,
        headers: vec![],
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

pub fn status(code: u16, body: &str) -> Step {
    Step::Reply {
        status: code,
        headers: vec![],
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

pub fn with_header(step: Step, name: &str, value: &str) -> Step {
    match step {
        Step::Reply {
            status,
            mut headers,
            body,
            delay,
        } => {
            headers.push((name.into(), value.into()));
            Step::Reply {
                status,
                headers,
                body,
                delay,
            }
        }
        other => other,
    }
}

pub fn delayed(step: Step, delay: Duration) -> Step {
    match step {
        Step::Reply {
            status,
            headers,
            body,
            ..
        } => Step::Reply {
            status,
            headers,
            body,
            delay,
        },
        other => other,
    }
}

/// A reply with `content` and server-counted usage.
pub fn chat(content: &str) -> Value {
    chat_ending(content, "stop")
}

/// A reply with `content`, `finish_reason` and server-counted usage.
pub fn chat_ending(content: &str, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    })
}

/// What llama.cpp's server (llama-cpp-python 0.3.36) answers to `response_format: json_schema`:
/// a 500 carrying the request validation error.
pub const LLAMA_CPP_JSON_SCHEMA_500: &str = r#"{"error":{"message":"1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", line 376, in create_chat_completion\n    POST /v1/chat/completions","type":"internal_server_error","param":null,"code":null}}"#;

/// What a LiteLLM proxy (1.108.7) answers when its upstream fails (`litellm.InternalServerError`).
pub const LITELLM_500: &str = r#"{"error":{"message":"litellm.InternalServerError: this is a mock internal server error\n\nLiteLLM: model group 'internal-err' failed with the error above. No fallback was attempted.","type":"internal_server_error","param":null,"code":"500"}}"#;

#[derive(Clone, Debug)]
pub struct Seen {
    pub head: String,
    pub body: Value,
}

type Handler = Arc<dyn Fn(usize, &Value) -> Step + Send + Sync>;

pub struct Stub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    /// Serves `steps` in order, repeating the last one.
    pub async fn script(steps: Vec<Step>) -> Stub {
        let steps = Arc::new(steps);
        Stub::handler(move |i, _| steps[i.min(steps.len() - 1)].clone()).await
    }

    /// Decides each reply from the request number and body.
    pub async fn handler(f: impl Fn(usize, &Value) -> Step + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(f);
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, seen, handler).await;
                });
            }
        });
        Stub { addr, seen }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn serve(
    mut socket: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    handler: Handler,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    let index = {
        let mut s = seen.lock().expect("lock");
        s.push(Seen {
            head,
            body: body.clone(),
        });
        s.len() - 1
    };
    match handler(index, &body) {
        Step::Reply {
            status,
            headers,
            body,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            let mut out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            socket.write_all(out.as_bytes()).await?;
        }
        Step::Stream(events) => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
                )
                .await?;
            for (pause, payload) in events {
                tokio::time::sleep(pause).await;
                socket
                    .write_all(format!("data: {payload}\n\n").as_bytes())
                    .await?;
                socket.flush().await?;
            }
        }
    }
    socket.flush().await?;
    socket.shutdown().await
}

/// A temporary project root with an ao.toml.
pub struct Root(pub PathBuf);

impl Root {
    pub fn new(ao_toml: &str) -> Root {
        let dir = std::env::temp_dir().join(format!(
            "ao-models-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("ao.toml"), ao_toml).expect("write");
        Root(dir)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The leader config for `base_url` (model `m1`, the planted key), with extra `[leader]` lines.
pub fn leader(base_url: &str, extra: &str) -> ModelConfig {
    leader_of("openai-compatible", base_url, extra)
}

/// Like [`leader`], for another provider preset (`llamacpp`, `openai`, …).
pub fn leader_of(provider: &str, base_url: &str, extra: &str) -> ModelConfig {
    let toml = format!(
        "[leader]\nprovider = \"{provider}\"\nmodel = \"m1\"\nbase_url = \"{base_url}\"\n\
         api_key = \"{PLANTED_KEY}\"\n{extra}\n"
    );
    let root = Root::new(&toml);
    let config = Config::load(&ConfigInputs::new(&root.0)).expect("config");
    config.leader().expect("leader").clone()
}

pub fn fast_timing() -> ao_models::RetryTiming {
    ao_models::RetryTiming {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
        default_cooldown: Duration::from_secs(30),
    }
}

pub fn client(base_url: &str, extra: &str) -> ao_models::ModelClient {
    ao_models::ModelClient::from_roles([leader(base_url, extra)])
        .expect("client")
        .with_retry_timing(fast_timing())
}

/// A client of one leader with the given provider preset, and timing.
pub fn client_of(
    provider: &str,
    base_url: &str,
    extra: &str,
    timing: ao_models::RetryTiming,
) -> ao_models::ModelClient {
    ao_models::ModelClient::from_roles([leader_of(provider, base_url, extra)])
        .expect("client")
        .with_retry_timing(timing)
}
