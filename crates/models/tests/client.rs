//! The client against local stub servers: replies, structured output, retries, errors,
//! fallback, usage, streaming and redaction.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ao_models::{
    CompletionRequest, MemoryRecorder, Message, ModelError, OutputSchema, StreamEvent,
    StructuredMode, TimeoutKind, ToolSpec, UsageTotals,
};
use serde_json::{Value, json};
use support::*;

fn ask() -> CompletionRequest {
    CompletionRequest::new(vec![Message::system("be brief"), Message::user("hello")])
}

fn plan_schema() -> OutputSchema {
    OutputSchema::new(
        "plan",
        json!({"type": "object", "required": ["steps"], "additionalProperties": false,
               "properties": {"steps": {"type": "array", "items": {"type": "string"}}}}),
    )
}

fn assert_no_key(recorder: &MemoryRecorder) {
    let text = serde_json::to_string(&recorder.exchanges()).expect("json");
    assert!(
        !text.contains(PLANTED_KEY),
        "key leaked into exchanges: {text}"
    );
}

#[tokio::test]
async fn plain_reply() {
    let stub = Stub::script(vec![ok(chat("Hi there"))]).await;
    let client = client(&stub.base_url(), "");
    let rec = MemoryRecorder::new();
    let done = client.complete("leader", ask(), &rec).await.expect("reply");
    assert_eq!(done.text, "Hi there");
    assert_eq!(done.model, "m1");
    assert_eq!(done.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        (done.usage.prompt_tokens, done.usage.completion_tokens),
        (11, 7)
    );
    assert!(!done.usage.estimated);
    assert_eq!(done.attempts, 1);
    assert!(done.json.is_none());

    let seen = stub.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].head.starts_with("POST /v1/chat/completions "),
        "{}",
        seen[0].head
    );
    assert!(seen[0].head.contains(&format!("Bearer {PLANTED_KEY}")));
    assert_eq!(seen[0].body["model"], "m1");
    assert_eq!(seen[0].body["messages"][1]["content"], "hello");

    let ex = rec.exchanges();
    assert_eq!(ex.len(), 1);
    assert_eq!((ex[0].attempt, ex[0].status), (1, Some(200)));
    assert_eq!(ex[0].model, "m1");
    assert!(
        ex[0]
            .response
            .as_deref()
            .unwrap_or_default()
            .contains("Hi there")
    );
    assert_no_key(&rec);
}

#[tokio::test]
async fn structured_json_schema_mode() {
    let stub = Stub::script(vec![ok(chat(r#"{"steps": ["a", "b"]}"#))]).await;
    let client = client(&stub.base_url(), "");
    let done = client
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["a", "b"]})));
    assert_eq!(done.structured_mode, Some(StructuredMode::JsonSchema));
    let body = &stub.requests()[0].body;
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"][0],
        "steps"
    );
    let learned = client.learned_modes();
    assert_eq!(
        learned.get(&stub.base_url(), "m1").map(|l| l.mode),
        Some(StructuredMode::JsonSchema)
    );
}

#[tokio::test]
async fn json_object_with_schema_after_json_schema_is_rejected_and_remembered() {
    let stub = Stub::handler(|_, body| match body["response_format"]["type"].as_str() {
        Some("json_schema") => status(
            400,
            r#"{"error":{"message":"response_format json_schema is not supported"}}"#,
        ),
        _ => ok(chat(r#"{"steps": []}"#)),
    })
    .await;
    let client = client(&stub.base_url(), "");
    let done = client
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(done.structured_mode, Some(StructuredMode::JsonObjectSchema));
    assert_eq!(done.json, Some(json!({"steps": []})));
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body["response_format"]["type"], "json_object");
    assert_eq!(
        seen[1].body["response_format"]["schema"],
        plan_schema().schema
    );
    let system = seen[1].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        system.contains("\"required\""),
        "schema not in prompt: {system}"
    );

    // Remembered: the next call goes straight to json_object, and survives export/import.
    client
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(stub.requests().len(), 3);
    assert_eq!(
        stub.requests()[2].body["response_format"]["type"],
        "json_object"
    );
    let fresh = support::client(&stub.base_url(), "");
    fresh.import_learned_modes(client.learned_modes());
    fresh
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(stub.requests().len(), 4);
    assert_eq!(
        stub.requests()[3].body["response_format"]["type"],
        "json_object"
    );
}

#[tokio::test]
async fn prompt_only_mode_when_every_response_format_fails_with_500() {
    // A server that answers any response_format with a 500 about it.
    let stub = Stub::handler(|_, body| {
        if body.get("response_format").is_some() {
            status(
                500,
                r#"{"error":{"code":500,"message":"Unsupported response_format"}}"#,
            )
        } else {
            ok(chat("```json\n{\"steps\": [\"x\"]}\n```"))
        }
    })
    .await;
    let client = client(&stub.base_url(), "");
    let done = client
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(done.structured_mode, Some(StructuredMode::PromptOnly));
    assert_eq!(done.json, Some(json!({"steps": ["x"]})));
    let seen = stub.requests();
    // A 5xx that names the response format moves to the next mode at once; each step-down
    // is one of the call's three retries.
    let types: Vec<_> = seen
        .iter()
        .map(|s| {
            s.body["response_format"]["type"]
                .as_str()
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    assert_eq!(types, ["json_schema", "json_object", "json_object", "none"]);
    assert!(seen[1].body["response_format"].get("schema").is_some());
    assert!(seen[2].body["response_format"].get("schema").is_none());
    assert_eq!(done.retries, 3);
    let system = seen[3].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        system.starts_with("be brief\n\nReply with one JSON value"),
        "{system}"
    );

    client
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(
        stub.requests().len(),
        5,
        "the learned mode is used directly"
    );
}

#[tokio::test]
async fn fenced_reply_with_leading_prose() {
    let stub = Stub::script(vec![ok(chat(
        "Sure, here is the plan:\n```json\n{\"steps\": [\"build\", \"test\"]}\n```\nGood luck!",
    ))])
    .await;
    let done = client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["build", "test"]})));
    assert_eq!(done.repairs, 0);
}

#[tokio::test]
async fn schema_violation_then_repaired_reply() {
    let stub = Stub::script(vec![
        ok(chat(r#"{"steps": ["ok", 42]}"#)),
        ok(chat(r#"{"steps": ["ok", "42"]}"#)),
    ])
    .await;
    let done = client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["ok", "42"]})));
    assert_eq!(done.repairs, 1);
    assert_eq!(
        (done.usage.prompt_tokens, done.usage.completion_tokens),
        (22, 14)
    );
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    let messages = seen[1].body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let previous = &messages[messages.len() - 2];
    assert_eq!(previous["role"], "assistant");
    assert_eq!(previous["content"], r#"{"steps": ["ok", 42]}"#);
    let repair = messages.last().cloned().unwrap_or(Value::Null);
    assert_eq!(repair["role"], "user");
    let text = repair["content"].as_str().unwrap_or_default();
    assert!(text.contains("/steps/1"), "{text}");
    assert!(text.contains("is not of type \"string\""), "{text}");
}

#[tokio::test]
async fn a_reply_that_breaks_a_rule_beyond_the_schema_is_repaired_like_a_schema_issue() {
    let stub = Stub::script(vec![
        ok(chat(r#"{"steps": ["a", "a"]}"#)),
        ok(chat(r#"{"steps": ["a", "b"]}"#)),
    ])
    .await;
    let schema = plan_schema().with_check(|v| {
        let steps = v["steps"].as_array().cloned().unwrap_or_default();
        if steps.windows(2).any(|w| w[0] == w[1]) {
            Err("RULE: two steps are the same".into())
        } else {
            Ok(())
        }
    });
    let done = client(&stub.base_url(), "")
        .complete("leader", ask().with_schema(schema), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["a", "b"]})));
    assert_eq!(done.repairs, 1);
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    let repair = seen[1].body["messages"]
        .as_array()
        .and_then(|m| m.last().cloned())
        .unwrap_or(Value::Null);
    let text = repair["content"].as_str().unwrap_or_default();
    assert!(text.contains("RULE: two steps are the same"), "{text}");
}

#[tokio::test]
async fn repairs_exhausted_names_the_schema_path() {
    let stub = Stub::script(vec![ok(chat(r#"{"steps": [1], "extra": true}"#))]).await;
    let err = client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(plan_schema()).with_max_repairs(1),
            &MemoryRecorder::new(),
        )
        .await
        .expect_err("must fail");
    assert!(
        matches!(err.error, ModelError::SchemaViolation { repairs: 1, .. }),
        "{err:?}"
    );
    let paths = err.error.schema_paths();
    assert!(paths.contains(&"/steps/0"), "{paths:?}");
    let msg = err.to_string();
    assert!(msg.contains("/steps/0"), "{msg}");
    assert!(msg.contains("schema `plan`"), "{msg}");
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let stub = Stub::script(vec![
        with_header(
            status(429, r#"{"error":{"message":"slow down"}}"#),
            "Retry-After",
            "1",
        ),
        ok(chat("after the wait")),
    ])
    .await;
    let rec = MemoryRecorder::new();
    let started = Instant::now();
    let done = client(&stub.base_url(), "")
        .complete("leader", ask(), &rec)
        .await
        .expect("reply");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "waited {elapsed:?}");
    assert_eq!(done.text, "after the wait");
    assert_eq!(done.attempts, 2);
    let statuses: Vec<_> = rec.exchanges().iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![Some(429), Some(200)]);
}

#[tokio::test]
async fn rate_limit_with_http_date_retry_after() {
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let stub = Stub::script(vec![
        with_header(status(429, "{}"), "Retry-After", &at),
        ok(chat("ok")),
    ])
    .await;
    let started = Instant::now();
    client(&stub.base_url(), "")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    // HTTP dates have one-second resolution: the wait is at least 1 s.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_error_then_success() {
    let stub = Stub::script(vec![
        status(500, "internal"),
        status(503, "busy"),
        ok(chat("up")),
    ])
    .await;
    let rec = MemoryRecorder::new();
    let done = client(&stub.base_url(), "")
        .complete("leader", ask(), &rec)
        .await
        .expect("reply");
    assert_eq!(done.text, "up");
    assert_eq!(done.attempts, 3);
    let attempts: Vec<_> = rec
        .exchanges()
        .iter()
        .map(|e| (e.attempt, e.status))
        .collect();
    assert_eq!(
        attempts,
        vec![(1, Some(500)), (2, Some(503)), (3, Some(200))]
    );
}

#[tokio::test]
async fn server_errors_exhaust_bounded_retries() {
    let stub = Stub::script(vec![status(502, "bad gateway")]).await;
    let err = client(&stub.base_url(), "max_retries = 2")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("must fail");
    assert!(
        matches!(
            err.error,
            ModelError::ServerError {
                status: 502,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(stub.requests().len(), 3);
}

#[tokio::test]
async fn total_timeout() {
    let stub = Stub::script(vec![delayed(ok(chat("late")), Duration::from_secs(3))]).await;
    let started = Instant::now();
    let err = client(
        &stub.base_url(),
        "max_retries = 0\ntimeout = { total = 0.4 }",
    )
    .complete("leader", ask(), &MemoryRecorder::new())
    .await
    .expect_err("must time out");
    assert!(
        matches!(
            err.error,
            ModelError::Timeout {
                kind: TimeoutKind::Total,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("timeout"), "{err}");
}

#[tokio::test]
async fn connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let base = format!("http://{addr}/v1");
    let rec = MemoryRecorder::new();
    let err = client(&base, "max_retries = 1")
        .complete("leader", ask(), &rec)
        .await
        .expect_err("must fail");
    assert!(
        matches!(err.error, ModelError::Connect { attempts: 2, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&format!("cannot connect to {base}")), "{msg}");
    assert_eq!(rec.exchanges().len(), 2);
    assert!(rec.exchanges()[0].status.is_none());
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_never_shows_the_key() {
    // The server echoes the key, as some do.
    let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {PLANTED_KEY}"}}}}"#);
    let stub = Stub::script(vec![status(401, &body)]).await;
    let rec = MemoryRecorder::new();
    let err = client(&stub.base_url(), "")
        .complete("leader", ask(), &rec)
        .await
        .expect_err("must fail");
    assert!(
        matches!(err.error, ModelError::BadApiKey { status: 401, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("bad API key for {}", stub.base_url())),
        "{msg}"
    );
    assert!(!msg.contains(PLANTED_KEY), "{msg}");
    assert!(!format!("{err:?}").contains(PLANTED_KEY));
    assert_eq!(stub.requests().len(), 1);
    assert_no_key(&rec);
    assert!(
        rec.exchanges()[0]
            .response
            .as_deref()
            .unwrap_or_default()
            .contains("[REDACTED]")
    );
}

#[tokio::test]
async fn not_found_says_unknown_model_or_wrong_base_url() {
    let stub = Stub::script(vec![status(
        404,
        r#"{"error":{"message":"The model `m1` does not exist","code":"model_not_found"}}"#,
    )])
    .await;
    let err = client(&stub.base_url(), "")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("unknown model `m1` at {}", stub.base_url())),
        "{msg}"
    );
    assert_eq!(stub.requests().len(), 1);

    let stub = Stub::script(vec![status(404, "404 page not found")]).await;
    let err = client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "wrong base URL: {}/chat/completions answered 404",
            stub.base_url()
        )),
        "{msg}"
    );
    assert_eq!(
        stub.requests().len(),
        1,
        "404 is neither retried nor probed"
    );
}

#[tokio::test]
async fn reply_quirks_are_accepted() {
    let quirks = [
        json!({"choices": [{"message": {"content": "a"}, "finish_reason": "eos"}]}),
        json!({"choices": [{"message": {"content": "a"}, "finish_reason": ""}], "created": 1}),
        json!({"object": "chat.completion", "choices": [{"message": {"content": "a"}}], "model": "x"}),
        json!({"id": "1", "created": 1712345678.25, "choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}]}),
        json!({"id": "1", "choices": [{"message": {"content": "a", "tool_calls": [
            {"id": "c1", "function": {"name": "read_file", "arguments": "{\"path\":\"x\"}"}}
        ]}, "finish_reason": "tool_calls"}]}),
        json!({"id": "1", "system_fingerprint": null, "x_extra": {"deep": [1]}, "choices": [{"message": {"content": "a", "reasoning_content": "hmm", "refusal": null}, "logprobs": null, "finish_reason": "stop", "stop_reason": 2}], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 0}}, "timings": {}}),
    ];
    let expected_finish = [
        Some("eos"),
        Some(""),
        None,
        Some("stop"),
        Some("tool_calls"),
        Some("stop"),
    ];
    for (quirk, finish) in quirks.iter().zip(expected_finish) {
        let stub = Stub::script(vec![ok(quirk.clone())]).await;
        let done = client(&stub.base_url(), "")
            .complete("leader", ask(), &MemoryRecorder::new())
            .await
            .unwrap_or_else(|e| panic!("{quirk}: {e}"));
        assert_eq!(done.text, "a", "{quirk}");
        assert_eq!(done.finish_reason.as_deref(), finish, "{quirk}");
    }
    let stub = Stub::script(vec![ok(quirks[4].clone())]).await;
    let done = client(&stub.base_url(), "")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(done.tool_calls.len(), 1);
    assert_eq!(done.tool_calls[0].name, "read_file");
    assert_eq!(
        done.tool_calls[0].arguments_json(),
        Some(json!({"path": "x"}))
    );
}

#[tokio::test]
async fn malformed_reply_is_a_clear_error() {
    let stub = Stub::script(vec![Step::Reply {
        status: 200,
        headers: vec![],
        body: "<html>proxy error</html>".into(),
        delay: Duration::ZERO,
    }])
    .await;
    let err = client(&stub.base_url(), "")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("must fail");
    assert!(
        matches!(err.error, ModelError::InvalidReply { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("proxy error"), "{err}");
}

#[tokio::test]
async fn fallback_model_on_rate_limit_with_cool_down() {
    let stub = Stub::handler(|_, body| match body["model"].as_str() {
        Some("m1") => with_header(
            status(429, r#"{"error":"rate limited"}"#),
            "Retry-After",
            "30",
        ),
        _ => ok(chat("from the fallback")),
    })
    .await;
    let client = client(&stub.base_url(), "fallback = [\"m2\"]");
    let rec = MemoryRecorder::new();
    let started = Instant::now();
    let done = client.complete("leader", ask(), &rec).await.expect("reply");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait for m1"
    );
    assert_eq!(done.model, "m2");
    assert_eq!(done.text, "from the fallback");
    let note = done.fallback.clone().expect("the fallback is said");
    assert_eq!(note.from, "m1");
    assert!(note.reason.contains("rate-limiting"), "{}", note.reason);
    let models: Vec<_> = rec.exchanges().iter().map(|e| e.model.clone()).collect();
    assert_eq!(models, vec!["m1", "m2"]);

    // m1 cools down for its Retry-After: the next call goes straight to m2.
    client
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    let models: Vec<_> = stub
        .requests()
        .iter()
        .map(|s| s.body["model"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(models, vec!["m1", "m2", "m2"]);
}

#[tokio::test]
async fn usage_estimated_when_absent_and_priced_and_totalled() {
    let no_usage =
        json!({"choices": [{"message": {"content": "12345678"}, "finish_reason": "stop"}]});
    let stub = Stub::script(vec![ok(no_usage), ok(chat("x"))]).await;
    let client = client(&stub.base_url(), "price = { input = 2.0, output = 10.0 }");
    let request = CompletionRequest::new(vec![Message::user("abcdefghijklmnop")]);
    let first = client
        .complete("leader", request.clone(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert!(first.usage.estimated);
    assert_eq!(
        (first.usage.prompt_tokens, first.usage.completion_tokens),
        (4, 2)
    );
    let second = client
        .complete("leader", request, &MemoryRecorder::new())
        .await
        .expect("reply");
    assert!(!second.usage.estimated);
    let cost = second.usage.cost_usd.expect("priced");
    assert!(
        (cost - (11.0 * 2.0 + 7.0 * 10.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );

    let mut totals = UsageTotals::default();
    totals.add(&first.role, &first.usage);
    totals.add(&second.role, &second.usage);
    assert_eq!(totals.total.prompt_tokens, 15);
    assert_eq!(totals.total.completion_tokens, 9);
    assert!(totals.total.estimated);
    assert_eq!(totals.by_role["leader"].total_tokens(), 24);
}

fn stream_events() -> Vec<(Duration, String)> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "s", "model": "m1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string()
    };
    let z = Duration::from_millis(5);
    vec![
        (z, chunk(json!({"role": "assistant", "content": ""}), Value::Null)),
        (z, chunk(json!({"content": "Hel"}), Value::Null)),
        (z, chunk(json!({"content": "lo"}), Value::Null)),
        (z, chunk(json!({"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{\"pat"}}]}), Value::Null)),
        (z, chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "tern\":\"x\"}"}}]}), Value::Null)),
        (z, chunk(json!({}), json!("tool_calls"))),
        (z, json!({"id": "s", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}}).to_string()),
        (z, "[DONE]".to_string()),
    ]
}

#[tokio::test]
async fn streaming_assembles_the_same_result_as_non_streaming() {
    let whole = json!({"id": "s", "model": "m1", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "Hello",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{\"pattern\":\"x\"}"}}]},
        "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 11, "completion_tokens": 7}});
    let stub = Stub::handler(move |_, body| {
        if body["stream"] == json!(true) {
            Step::Stream(stream_events())
        } else {
            ok(whole.clone())
        }
    })
    .await;
    let client = client(&stub.base_url(), "");
    let tools = vec![ToolSpec {
        name: "grep".into(),
        description: Some("search".into()),
        parameters: json!({"type": "object", "properties": {"pattern": {"type": "string"}}}),
    }];
    let request = ask().with_tools(tools);
    let plain = client
        .complete("leader", request.clone(), &MemoryRecorder::new())
        .await
        .expect("plain");
    let deltas = Mutex::new(Vec::<String>::new());
    let on_delta = |e: StreamEvent<'_>| {
        if let StreamEvent::Text(d) = e {
            deltas.lock().expect("lock").push(d.to_string())
        }
    };
    let rec = MemoryRecorder::new();
    let streamed = client
        .complete_streaming("leader", request, &rec, &on_delta)
        .await
        .expect("streamed");
    assert_eq!(streamed.text, plain.text);
    assert_eq!(streamed.tool_calls, plain.tool_calls);
    assert_eq!(streamed.finish_reason, plain.finish_reason);
    assert_eq!(streamed.usage, plain.usage);
    assert_eq!(streamed.served_model, plain.served_model);
    assert_eq!(deltas.lock().expect("lock").concat(), "Hello");
    assert_eq!(deltas.lock().expect("lock").len(), 2);
    let seen = stub.requests();
    assert_eq!(seen[0].body["tools"][0]["function"]["name"], "grep");
    assert_eq!(seen[0].body["tools"][0]["type"], "function");
    assert_eq!(seen[1].body["stream_options"]["include_usage"], true);
    assert!(rec.exchanges()[0].streamed);
    assert!(
        rec.exchanges()[0]
            .response
            .as_deref()
            .unwrap_or_default()
            .contains("[DONE]")
    );
}

#[tokio::test]
async fn streaming_idle_timeout() {
    let mut events = stream_events();
    events[2].0 = Duration::from_secs(3);
    let stub = Stub::script(vec![Step::Stream(events)]).await;
    let started = Instant::now();
    let err = client(
        &stub.base_url(),
        "max_retries = 0\ntimeout = { idle = 0.3 }",
    )
    .complete_streaming("leader", ask(), &MemoryRecorder::new(), &|_| {})
    .await
    .expect_err("must time out");
    assert!(
        matches!(
            err.error,
            ModelError::Timeout {
                kind: TimeoutKind::Idle,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tool_results_are_sent_back() {
    let stub = Stub::script(vec![ok(chat("done"))]).await;
    let call = ao_models::ToolCall {
        id: "c1".into(),
        name: "grep".into(),
        arguments: "{}".into(),
    };
    let request = CompletionRequest::new(vec![
        Message::user("find x"),
        Message::assistant_tool_calls(Some("Let me search.".into()), vec![call]),
        Message::tool_result("c1", "x found"),
    ]);
    client(&stub.base_url(), "")
        .complete("leader", request, &MemoryRecorder::new())
        .await
        .expect("reply");
    let messages = &stub.requests()[0].body["messages"];
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], "Let me search.");
    assert_eq!(messages[1]["tool_calls"][0]["id"], "c1");
    assert_eq!(messages[1]["tool_calls"][0]["type"], "function");
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "c1", "content": "x found"})
    );
}

#[tokio::test]
async fn unknown_role_and_missing_leader() {
    let client = ao_models::ModelClient::from_roles([]).expect("client");
    let err = client
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("no leader");
    assert!(err.to_string().contains("LEADER_MODEL_PROVIDER"), "{err}");
    let err = client
        .complete("reviewer", ask(), &MemoryRecorder::new())
        .await
        .expect_err("unknown");
    assert!(
        err.to_string().contains("unknown model role `reviewer`"),
        "{err}"
    );
}

#[tokio::test]
async fn huge_tool_call_index_is_an_invalid_reply_not_a_panic() {
    for index in [
        json!(1e300),
        json!(18446744073709551615u64),
        json!(4_000_000_000u64),
    ] {
        let reply = json!({"choices": [{"message": {"content": "", "tool_calls": [
            {"index": index, "id": "c1", "function": {"name": "grep", "arguments": "{}"}}
        ]}, "finish_reason": "tool_calls"}]});
        let chunk = json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "id": "c1", "function": {"name": "grep", "arguments": "{}"}}
        ]}}]})
        .to_string();
        let stub = Stub::handler(move |_, body| {
            if body["stream"] == json!(true) {
                Step::Stream(vec![
                    (Duration::ZERO, chunk.clone()),
                    (Duration::ZERO, "[DONE]".into()),
                ])
            } else {
                ok(reply.clone())
            }
        })
        .await;
        let client = client(&stub.base_url(), "");
        let err = client
            .complete("leader", ask(), &MemoryRecorder::new())
            .await
            .expect_err("invalid");
        assert!(
            matches!(err.error, ModelError::InvalidReply { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = client
            .complete_streaming("leader", ask(), &MemoryRecorder::new(), &|_| {})
            .await
            .expect_err("invalid");
        assert!(
            matches!(err.error, ModelError::InvalidReply { .. }),
            "{err:?}"
        );
        assert_eq!(stub.requests().len(), 2, "an invalid reply is not retried");
    }
}

#[tokio::test]
async fn huge_retry_after_does_not_panic() {
    let stub = Stub::script(vec![with_header(
        status(429, r#"{"error":{"message":"slow down"}}"#),
        "Retry-After",
        "18446744073709551615",
    )])
    .await;
    let client = client(&stub.base_url(), "");
    let started = Instant::now();
    let err = client
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("rate limited");
    assert!(
        matches!(err.error, ModelError::RateLimited { .. }),
        "{err:?}"
    );
    // The model cools down; the next call fails at once instead of waiting a day.
    let err = client
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("still cooling down");
    assert!(
        matches!(err.error, ModelError::RateLimited { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn prose_with_a_citation_array_still_yields_the_plan() {
    let stub = Stub::script(vec![ok(chat(
        "Based on [1], here is the plan: {\"steps\":[\"a\"]}",
    ))])
    .await;
    let done = client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["a"]})));
    assert_eq!(done.repairs, 0);
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn oversized_replies_are_invalid_and_error_bodies_are_cut() {
    let big = "x".repeat(ao_models::MAX_REPLY_BYTES + 1024);
    // A whole reply over the limit (with a Content-Length).
    let stub = Stub::script(vec![ok(chat(&big))]).await;
    let rec = MemoryRecorder::new();
    let err = client(&stub.base_url(), "")
        .complete("leader", ask(), &rec)
        .await
        .expect_err("too large");
    assert!(
        matches!(err.error, ModelError::InvalidReply { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("MiB"), "{err}");
    assert_eq!(stub.requests().len(), 1, "not retried");
    let kept = rec.exchanges()[0].response.clone().unwrap_or_default();
    assert!(kept.len() < 1024 * 1024, "{} bytes kept", kept.len());

    // Without a Content-Length (read until the connection closes), and streamed: 1 MiB events.
    let event = json!({"choices": [{"delta": {"content": "y".repeat(1024 * 1024)}}]}).to_string();
    let events: Vec<(Duration, String)> =
        (0..20).map(|_| (Duration::ZERO, event.clone())).collect();
    let stub = Stub::script(vec![Step::Stream(events)]).await;
    let c = client(&stub.base_url(), "max_retries = 0");
    let err = c
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("too large");
    assert!(
        matches!(err.error, ModelError::InvalidReply { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("MiB"), "{err}");
    let err = c
        .complete_streaming("leader", ask(), &MemoryRecorder::new(), &|_| {})
        .await
        .expect_err("too large");
    assert!(
        matches!(err.error, ModelError::InvalidReply { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("MiB"), "{err}");

    // An error body is cut, not refused: the status still decides.
    let body = format!(
        r#"{{"error":{{"message":"busy {}"}}}}"#,
        "z".repeat(1024 * 1024)
    );
    let stub = Stub::script(vec![status(503, &body)]).await;
    let rec = MemoryRecorder::new();
    let err = client(&stub.base_url(), "max_retries = 0")
        .complete("leader", ask(), &rec)
        .await
        .expect_err("server error");
    assert!(
        matches!(err.error, ModelError::ServerError { status: 503, .. }),
        "{err:?}"
    );
    let kept = rec.exchanges()[0].response.clone().unwrap_or_default();
    assert!(
        kept.len() <= ao_models::MAX_ERROR_BODY_BYTES + 16,
        "{} bytes kept",
        kept.len()
    );
}

#[tokio::test]
async fn an_unrelated_400_is_not_resent_in_weaker_modes() {
    let stub = Stub::script(vec![status(
        400,
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens, you requested 9000"}}"#,
    )])
    .await;
    let client = client(&stub.base_url(), "");
    let err = client
        .complete(
            "leader",
            ask().with_schema(plan_schema()),
            &MemoryRecorder::new(),
        )
        .await
        .expect_err("rejected");
    assert!(
        matches!(err.error, ModelError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("maximum context length"), "{err}");
    assert_eq!(stub.requests().len(), 1, "a 400 is sent once");
    assert!(client.learned_modes().is_empty(), "nothing learned");
}
