//! Test support for `ao`'s crates: a local stub of a chat-completions endpoint.
//!
//! [`StubModel`] serves HTTP/1.1 on 127.0.0.1 from a thread, one request per connection,
//! answering each `POST …/chat/completions` with a scripted function, and keeps every request
//! body so tests can assert what was sent. Tests never need a network or a real key.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

type Responder = dyn Fn(&Value) -> (u16, Value) + Send + Sync;

pub struct StubModel {
    pub base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
    listener: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl StubModel {
    /// Serves `respond(request_body)` for every `POST …/chat/completions`.
    pub fn start(respond: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let auth_seen = authorizations.clone();
        let respond: Arc<Responder> = Arc::new(respond);
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_seen = stopped.clone();
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_seen.load(std::sync::atomic::Ordering::SeqCst) {
                    // Dropping the listener closes the port: later connections are refused.
                    return;
                }
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                let auth_seen = auth_seen.clone();
                let respond = respond.clone();
                std::thread::spawn(move || serve(stream, &seen, &auth_seen, &*respond));
            }
        });
        StubModel {
            base_url: format!("http://{addr}/v1"),
            requests,
            authorizations,
            stopped,
            addr,
            listener: Mutex::new(Some(handle)),
        }
    }

    /// Stops serving: the port is closed once this returns, so any later request fails to
    /// connect (what it received so far stays readable).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(handle) = self.listener.lock().unwrap().take() {
            let _ = handle.join();
        }
    }

    /// A stub that answers every request with `content` as the assistant's message.
    pub fn replying(content: &'static str) -> Self {
        Self::start(move |_| (200, completion(content)))
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// The `Authorization` header of every request, in the order they came.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations.lock().unwrap().clone()
    }
}

/// A chat-completion reply body with `content` and usage.
pub fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1,
        "model": "stub-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    })
}

/// A chat-completion reply asking for tool calls: `(function name, arguments)`, with ids
/// `call_0`, `call_1`, … and usage.
pub fn tool_calls(calls: &[(&str, Value)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    json!({
        "id": "chatcmpl-tools", "object": "chat.completion", "created": 1, "model": "stub-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9}
    })
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<Value>>,
    auth_seen: &Mutex<Vec<Option<String>>>,
    respond: &Responder,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0usize;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push(request.clone());
    auth_seen.lock().unwrap().push(authorization);
    let (status, reply) = if line.contains("/chat/completions") {
        respond(&request)
    } else {
        (404, json!({"error": {"message": "not found"}}))
    };
    let mut stream = stream;
    if status == 200 && request["stream"] == true {
        // Asked to stream: the same reply as server-sent events, a few characters at a time.
        let body = sse(&reply);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.flush();
        return;
    }
    let text = reply.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

/// A chat-completion reply as the event stream a streaming server sends: the content in small
/// deltas, the tool calls in one delta, then the finish reason and usage, then `[DONE]`.
fn sse(reply: &Value) -> String {
    let choice = &reply["choices"][0];
    let message = &choice["message"];
    let mut events = Vec::new();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": reply["id"], "object": "chat.completion.chunk", "created": 1, "model": reply["model"],
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    if let Some(content) = message["content"].as_str() {
        let chars: Vec<char> = content.chars().collect();
        for piece in chars.chunks(4) {
            let text: String = piece.iter().collect();
            events.push(chunk(
                json!({"role": "assistant", "content": text}),
                Value::Null,
            ));
        }
    }
    if let Some(calls) = message["tool_calls"].as_array() {
        let calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut c = c.clone();
                c["index"] = json!(i);
                c
            })
            .collect();
        events.push(chunk(json!({"tool_calls": calls}), Value::Null));
    }
    let mut last = chunk(json!({}), choice["finish_reason"].clone());
    last["usage"] = reply["usage"].clone();
    events.push(last);
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}
