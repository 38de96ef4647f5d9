//! The client against stubs scripted as real servers behaved when `ao` was driven against a
//! LiteLLM proxy and a llama.cpp server: 500 bursts, 429s with and without `Retry-After`,
//! `finish_reason: length`, llama.cpp's 500 on `json_schema` and its grammar-constrained
//! `json_object` with a schema, OpenAI's strict mode.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ao_models::{
    AttemptKind, CompletionRequest, LearnedMode, LearnedModes, MemoryRecorder, Message, ModelError,
    OutputSchema, StreamEvent, StructuredMode,
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

fn structured() -> CompletionRequest {
    ask().with_schema(plan_schema())
}

fn format_of(body: &Value) -> String {
    match body["response_format"]["type"].as_str() {
        Some("json_object") if body["response_format"].get("schema").is_some() => {
            "json_object+schema".into()
        }
        Some(t) => t.into(),
        None => "none".into(),
    }
}

fn formats(stub: &Stub) -> Vec<String> {
    stub.requests().iter().map(|s| format_of(&s.body)).collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// llama.cpp's server: a 500 on `json_schema`; `json_object` with a schema gives valid JSON
/// (its grammar), without one whatever the model writes.
async fn llama_cpp() -> Stub {
    Stub::handler(|_, body| match format_of(body).as_str() {
        "json_schema" => status(500, LLAMA_CPP_JSON_SCHEMA_500),
        "json_object+schema" => ok(chat(r#"{ "steps": ["build"] }"#)),
        _ => ok(chat(" showingDefinitions HzѼ凓 Sprint Blog羔")),
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// 1. only a format rejection lowers the learned mode; learned modes carry a time and expire

#[tokio::test]
async fn a_burst_of_500s_never_lowers_the_structured_mode() {
    // LiteLLM passing on an upstream failure four times, then the answer.
    let stub = Stub::script(vec![
        status(500, LITELLM_500),
        status(500, LITELLM_500),
        status(502, "Bad Gateway"),
        status(500, LITELLM_500),
        ok(chat(r#"{"steps": ["a"]}"#)),
    ])
    .await;
    let client = client(&stub.base_url(), "max_retries = 4");
    let done = client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply after the burst");
    assert_eq!(formats(&stub), vec!["json_schema"; 5]);
    assert_eq!(done.structured_mode, Some(StructuredMode::JsonSchema));
    let learned = client.learned_modes();
    let learned = learned.get(&stub.base_url(), "m1").expect("learned");
    assert_eq!(learned.mode, StructuredMode::JsonSchema);
    assert_eq!(learned.reason, None);
}

#[tokio::test]
async fn a_429_and_a_timeout_never_lower_the_structured_mode() {
    let stub = Stub::script(vec![
        with_header(
            status(429, r#"{"error":{"message":"rate limited"}}"#),
            "Retry-After",
            "0",
        ),
        delayed(ok(chat(r#"{"steps": []}"#)), Duration::from_secs(3)),
        ok(chat(r#"{"steps": []}"#)),
    ])
    .await;
    let done = client(&stub.base_url(), "timeout = { total = 0.3 }")
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(formats(&stub), vec!["json_schema"; 3]);
    assert_eq!(done.structured_mode, Some(StructuredMode::JsonSchema));
}

#[tokio::test]
async fn llama_cpp_500_on_json_schema_steps_down_at_once_to_json_object_with_the_schema() {
    let stub = llama_cpp().await;
    let client = client(&stub.base_url(), "");
    let rec = MemoryRecorder::new();
    let before = now_secs();
    let done = client
        .complete("leader", structured(), &rec)
        .await
        .expect("the grammar-constrained reply");
    assert_eq!(done.json, Some(json!({"steps": ["build"]})));
    assert_eq!(done.structured_mode, Some(StructuredMode::JsonObjectSchema));
    assert_eq!(formats(&stub), ["json_schema", "json_object+schema"]);
    assert_eq!(
        stub.requests()[1].body["response_format"]["schema"],
        plan_schema().schema
    );
    let kinds: Vec<_> = rec.exchanges().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [AttemptKind::First, AttemptKind::StepDown]);
    assert_eq!(done.retries, 1, "a step-down is a retry");
    let learned = client.learned_modes();
    let learned = learned
        .get(&stub.base_url(), "m1")
        .expect("learned")
        .clone();
    assert_eq!(learned.mode, StructuredMode::JsonObjectSchema);
    assert!(learned.learned_at >= before && learned.learned_at <= now_secs() + 1);
    let reason = learned.reason.unwrap_or_default();
    assert!(reason.contains("response_format"), "{reason}");

    // Learned: the next call goes straight to json_object with the schema.
    client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(
        formats(&stub),
        ["json_schema", "json_object+schema", "json_object+schema"]
    );
}

#[tokio::test]
async fn the_llamacpp_preset_starts_with_json_object_and_the_schema() {
    let stub = llama_cpp().await;
    let done = client_of("llamacpp", &stub.base_url(), "", fast_timing())
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["build"]})));
    assert_eq!(formats(&stub), ["json_object+schema"]);
}

#[tokio::test]
async fn learned_modes_expire_and_the_endpoint_is_probed_again() {
    let stub = Stub::script(vec![ok(chat(r#"{"steps": []}"#))]).await;
    let client = client(&stub.base_url(), "");
    let mut modes = LearnedModes::new();
    modes.insert(LearnedMode {
        base_url: stub.base_url(),
        model: "m1".into(),
        mode: StructuredMode::PromptOnly,
        learned_at: now_secs() - 3600,
        reason: Some("HTTP 500: …".into()),
    });
    client.import_learned_modes(modes.clone());
    client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(formats(&stub), ["none"], "a fresh learned mode is used");

    // Two days old: expired, probed again from the first mode, and learned anew.
    let client = support::client(&stub.base_url(), "");
    let mut old = modes.clone();
    old.insert(LearnedMode {
        learned_at: now_secs() - 2 * 24 * 3600,
        ..modes.get(&stub.base_url(), "m1").expect("entry").clone()
    });
    client.import_learned_modes(old);
    let done = client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(formats(&stub), ["none", "json_schema"]);
    assert_eq!(done.structured_mode, Some(StructuredMode::JsonSchema));
    let learned = client.learned_modes();
    let entry = learned.get(&stub.base_url(), "m1").expect("learned");
    assert_eq!(entry.mode, StructuredMode::JsonSchema);
    assert!(entry.learned_at + 5 >= now_secs());

    // A lifetime can be configured; zero means every call probes again.
    let client = support::client(&stub.base_url(), "").with_learned_mode_lifetime(Duration::ZERO);
    client.import_learned_modes(modes);
    client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(
        formats(&stub).last().map(String::as_str),
        Some("json_schema")
    );
}

#[tokio::test]
async fn step_downs_count_against_the_retry_budget() {
    let stub = Stub::handler(|_, body| {
        if body.get("response_format").is_some() {
            status(
                400,
                r#"{"error":{"message":"Invalid parameter: 'response_format' is not supported with this model."}}"#,
            )
        } else {
            ok(chat(r#"{"steps": []}"#))
        }
    })
    .await;
    let err = client(&stub.base_url(), "max_retries = 1")
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect_err("the budget runs out before prompt-only");
    assert_eq!(formats(&stub), ["json_schema", "json_object+schema"]);
    assert!(
        matches!(err.error, ModelError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.exhausted);
    assert_eq!((err.requests, err.retries), (2, 1));
}

#[tokio::test]
async fn learned_modes_can_be_listed_and_forgotten_per_role() {
    let stub = llama_cpp().await;
    let client = client(&stub.base_url(), "");
    client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(client.learned_modes().len(), 1);
    assert_eq!(client.forget_learned_modes(Some("reviewer")), 0);
    assert_eq!(client.forget_learned_modes(Some("leader")), 1);
    assert!(client.learned_modes().is_empty());
    client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(
        formats(&stub)[2..],
        ["json_schema", "json_object+schema"],
        "probed again from the first mode"
    );
    assert_eq!(client.forget_learned_modes(None), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. failed calls are counted

#[tokio::test]
async fn a_failed_call_reports_the_usage_of_every_request_it_sent() {
    let stub = Stub::script(vec![
        status(503, "busy"),
        ok(chat(r#"{"steps": [1]}"#)),
        ok(chat(r#"{"steps": [2]}"#)),
        ok(chat(r#"{"steps": [3]}"#)),
    ])
    .await;
    let rec = MemoryRecorder::new();
    let err = client(&stub.base_url(), "price = { input = 2.0, output = 10.0 }")
        .complete("leader", structured(), &rec)
        .await
        .expect_err("the schema is never met");
    assert!(
        matches!(err.error, ModelError::SchemaViolation { repairs: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.requests, 4);
    assert_eq!(
        (err.usage.prompt_tokens, err.usage.completion_tokens),
        (33, 21)
    );
    let cost = err.usage.cost_usd.expect("priced");
    assert!((cost - 3.0 * (11.0 * 2.0 + 7.0 * 10.0) / 1e6).abs() < 1e-12);
    // Each request's own usage is in its exchange, the failed one's none.
    let per_request: Vec<_> = rec
        .exchanges()
        .iter()
        .map(|e| (e.kind, e.usage.map(|u| u.total_tokens())))
        .collect();
    assert_eq!(
        per_request,
        [
            (AttemptKind::First, None),
            (AttemptKind::Retry, Some(18)),
            (AttemptKind::Repair, Some(18)),
            (AttemptKind::Repair, Some(18)),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 3. a default max_tokens on every call; a tiny probe

#[tokio::test]
async fn every_call_sends_max_tokens_the_default_or_the_roles() {
    let stub = Stub::script(vec![ok(chat("ok"))]).await;
    for (provider, extra, field, expected) in [
        ("openai-compatible", "", "max_tokens", json!(4096)),
        ("llamacpp", "max_tokens = 300", "max_tokens", json!(300)),
        // OpenAI's reasoning models refuse `max_tokens`.
        ("openai", "", "max_completion_tokens", json!(4096)),
    ] {
        client_of(provider, &stub.base_url(), extra, fast_timing())
            .complete("leader", ask(), &MemoryRecorder::new())
            .await
            .expect("reply");
        let body = stub.requests().last().expect("request").body.clone();
        assert_eq!(body[field], expected, "{provider} {extra}: {body}");
    }
    client(&stub.base_url(), "max_tokens = 0")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    let body = stub.requests().last().expect("request").body.clone();
    assert!(body.get("max_tokens").is_none(), "0 sends no limit: {body}");
    client(&stub.base_url(), "")
        .complete("leader", ask().with_max_tokens(7), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(
        stub.requests().last().expect("request").body["max_tokens"],
        7
    );
}

#[tokio::test]
async fn the_probe_is_tiny_quick_and_says_why_structured_output_fails() {
    let stub = Stub::handler(|_, body| {
        let reply = if body.get("response_format").is_some() {
            chat(r#"{"ok": true}"#)
        } else {
            chat("ok")
        };
        delayed(ok(reply), Duration::from_millis(50))
    })
    .await;
    let client = client(&stub.base_url(), "");
    let started = Instant::now();
    let report = client.probe("leader").await.expect("probe");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    assert!(report.ok, "{report:?}");
    assert!(report.latency >= Duration::from_millis(50));
    assert_eq!(report.structured_mode, Some(StructuredMode::JsonSchema));
    assert_eq!(
        report.learned.as_ref().map(|l| l.mode),
        Some(StructuredMode::JsonSchema)
    );
    let sent: Vec<_> = stub
        .requests()
        .iter()
        .map(|s| s.body["max_tokens"].clone())
        .collect();
    assert_eq!(
        sent,
        [
            json!(ao_models::PROBE_MAX_TOKENS),
            json!(ao_models::PROBE_STRUCTURED_MAX_TOKENS)
        ]
    );

    // Structured output that fails says why.
    let stub = Stub::script(vec![ok(chat("sure thing"))]).await;
    let report = support::client(&stub.base_url(), "")
        .probe("leader")
        .await
        .expect("probe");
    assert!(report.ok);
    assert_eq!(report.structured_mode, None);
    let why = report.structured_error.unwrap_or_default();
    assert!(why.contains("contains no JSON value"), "{why}");
    assert!(
        support::client(&stub.base_url(), "")
            .probe("nobody")
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. cut-off replies

#[tokio::test]
async fn a_structured_reply_cut_off_is_an_error_naming_max_tokens() {
    let stub = Stub::script(vec![ok(chat_ending(
        r#"{"steps": ["configure the parser", "add the fl"#,
        "length",
    ))])
    .await;
    let err = client(&stub.base_url(), "max_tokens = 12")
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect_err("cut off");
    assert!(
        matches!(
            err.error,
            ModelError::CutOff {
                max_tokens: Some(12),
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("cut off"), "{msg}");
    assert!(msg.contains("max_tokens 12"), "{msg}");
    assert!(msg.contains("LEADER_MODEL_MAX_TOKENS"), "{msg}");
    assert_eq!(stub.requests().len(), 1, "no repair of a cut-off reply");
    assert_eq!(err.usage.total_tokens(), 18, "and it is counted");
}

#[tokio::test]
async fn a_text_reply_cut_off_is_returned_flagged() {
    let stub = Stub::script(vec![
        ok(chat_ending("The answer is", "length")),
        ok(chat("The answer is 42.")),
    ])
    .await;
    let client = client(&stub.base_url(), "");
    let done = client
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert!(done.truncated);
    assert_eq!(done.text, "The answer is");
    let done = client
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert!(!done.truncated);
}

// ---------------------------------------------------------------------------------------------
// 6. one retry budget per call; cool-downs hold for every attempt

#[tokio::test]
async fn one_retry_budget_for_the_primary_and_its_fallbacks() {
    let stub = Stub::script(vec![status(500, LITELLM_500)]).await;
    let rec = MemoryRecorder::new();
    let err = client(&stub.base_url(), "fallback = [\"m2\"]\nmax_retries = 3")
        .complete("leader", ask(), &rec)
        .await
        .expect_err("down");
    assert_eq!(stub.requests().len(), 4, "one budget: 1 + 3 requests");
    assert_eq!((err.requests, err.retries), (4, 3));
    assert!(err.exhausted && err.retried());
    let tried: Vec<_> = rec
        .exchanges()
        .iter()
        .map(|e| (e.model.clone(), e.kind))
        .collect();
    assert_eq!(tried[0], ("m1".to_string(), AttemptKind::First));
    assert_eq!(tried[1], ("m2".to_string(), AttemptKind::Fallback));

    // A failure the model layer does not retry says so too.
    let stub = Stub::script(vec![status(401, "{}")]).await;
    let err = client(&stub.base_url(), "")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("bad key");
    assert_eq!((err.requests, err.retries, err.exhausted), (1, 0, false));
    assert!(!err.retried());
}

#[tokio::test]
async fn retries_wait_out_the_cool_down_of_a_429_without_retry_after() {
    // A 429 without Retry-After cools the model down for the default cool-down; the retry (of
    // the first request, and of a repair round) waits it out instead of the short back-off.
    let times = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = times.clone();
    let stub = Stub::handler(move |i, _| {
        seen.lock().expect("lock").push(Instant::now());
        match i {
            0 | 2 => status(429, r#"{"error":{"message":"Rate limit reached"}}"#),
            1 => ok(chat(r#"{"steps": [1]}"#)),
            _ => ok(chat(r#"{"steps": ["a"]}"#)),
        }
    })
    .await;
    let timing = ao_models::RetryTiming {
        default_cooldown: Duration::from_millis(700),
        ..fast_timing()
    };
    let rec = MemoryRecorder::new();
    let done = client_of("openai-compatible", &stub.base_url(), "", timing)
        .complete("leader", structured(), &rec)
        .await
        .expect("reply");
    assert_eq!(done.json, Some(json!({"steps": ["a"]})));
    let times = times.lock().expect("lock").clone();
    assert_eq!(times.len(), 4);
    for (after, retry) in [(0, 1), (2, 3)] {
        let gap = times[retry] - times[after];
        assert!(
            gap >= Duration::from_millis(650),
            "{after}→{retry}: {gap:?}"
        );
    }
    let kinds: Vec<_> = rec.exchanges().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            AttemptKind::First,
            AttemptKind::Retry,
            AttemptKind::Repair,
            AttemptKind::Retry
        ]
    );
}

#[tokio::test]
async fn a_fallback_does_not_send_to_a_model_still_cooling_down() {
    // m1: 429 with Retry-After 2; m2: down. The retries stay on m2 until the budget is spent;
    // m1 is not sent to again within its cool-down.
    let stub = Stub::handler(|_, body| match body["model"].as_str() {
        Some("m1") => with_header(status(429, "{}"), "Retry-After", "2"),
        _ => status(503, "busy"),
    })
    .await;
    let started = Instant::now();
    let err = client(&stub.base_url(), "fallback = [\"m2\"]")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect_err("down");
    let models: Vec<_> = stub
        .requests()
        .iter()
        .map(|s| s.body["model"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(models, ["m1", "m2", "m2", "m2"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err.error, ModelError::ServerError { status: 503, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. OpenAI's strict mode

fn every_object_is_strict(v: &Value) -> Result<(), String> {
    if let Some(props) = v.get("properties").and_then(Value::as_object) {
        if v["additionalProperties"] != json!(false) {
            return Err(format!("open object: {v}"));
        }
        let required = v["required"].as_array().cloned().unwrap_or_default();
        for k in props.keys() {
            if !required.contains(&json!(k)) {
                return Err(format!("`{k}` not required: {v}"));
            }
        }
    }
    if v.get("default").is_some() {
        return Err(format!("`default` in {v}"));
    }
    match v {
        Value::Object(m) => m.values().try_for_each(every_object_is_strict),
        Value::Array(a) => a.iter().try_for_each(every_object_is_strict),
        _ => Ok(()),
    }
}

#[tokio::test]
async fn strict_json_schema_only_with_a_schema_strict_mode_accepts() {
    let plan = ao_core::types::type_schema("Plan").expect("Plan schema");
    // As strict mode answers: every property present, the optional ones null.
    let reply = json!({
        "summary": "Add the flag",
        "steps": [{"id": "s1", "title": "t", "description": "d", "task_type": "codegen",
                   "depends_on": null, "acceptance_checks": ["cargo test"]}],
        "assignments": null, "risks": null, "validation": ["cargo test"]
    });
    let stub = Stub::script(vec![ok(chat(&reply.to_string()))]).await;
    let done = client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(OutputSchema::new("Plan", plan.clone())),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    let format = &stub.requests()[0].body["response_format"]["json_schema"];
    assert_eq!(format["strict"], true);
    every_object_is_strict(&format["schema"]).expect("a schema strict mode accepts");
    // The caller gets a value for its own schema: nulls of optional fields turned into their
    // defaults.
    let json = done.json.expect("json");
    assert_eq!(json["assignments"], json!([]));
    assert_eq!(json["risks"], json!([]));
    assert_eq!(json["steps"][0]["depends_on"], json!([]));
    let validator = jsonschema::validator_for(&plan).expect("schema");
    assert!(validator.is_valid(&json), "{json}");

    // A schema strict mode cannot express (a free-form map) goes as it is, not strict.
    let free = json!({"type": "object", "required": ["env"],
                      "properties": {"env": {"type": "object", "additionalProperties": {"type": "string"}}}});
    let stub = Stub::script(vec![ok(chat(r#"{"env": {"A": "1"}}"#))]).await;
    client(&stub.base_url(), "")
        .complete(
            "leader",
            ask().with_schema(OutputSchema::new("env", free.clone())),
            &MemoryRecorder::new(),
        )
        .await
        .expect("reply");
    let format = &stub.requests()[0].body["response_format"]["json_schema"];
    assert_eq!(format["strict"], false);
    assert_eq!(format["schema"], free);
}

// ---------------------------------------------------------------------------------------------
// 9. small things

#[tokio::test]
async fn temperature_goes_out_as_written() {
    let stub = Stub::script(vec![ok(chat("ok"))]).await;
    client(&stub.base_url(), "temperature = 0.2")
        .complete("leader", ask(), &MemoryRecorder::new())
        .await
        .expect("reply");
    assert_eq!(stub.requests()[0].body["temperature"].to_string(), "0.2");
}

// ---------------------------------------------------------------------------------------------
// 10. streaming

fn sse(delta: Value, finish: Value) -> String {
    json!({"id": "s", "model": "m1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
}

#[tokio::test]
async fn streaming_gives_the_same_structured_completion_and_says_when_it_restarts() {
    let z = Duration::from_millis(5);
    let stub = Stub::handler(move |i, body| {
        if i == 0 {
            return status(500, LITELLM_500);
        }
        if body["stream"] == json!(true) {
            Step::Stream(vec![
                (
                    z,
                    sse(
                        json!({"role": "assistant", "content": "{\"steps\": "}),
                        Value::Null,
                    ),
                ),
                (z, sse(json!({"content": "[\"a\"]}"}), Value::Null)),
                (z, sse(json!({}), json!("stop"))),
                (
                    z,
                    json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}})
                        .to_string(),
                ),
                (z, "[DONE]".into()),
            ])
        } else {
            ok(chat(r#"{"steps": ["a"]}"#))
        }
    })
    .await;
    let client = client(&stub.base_url(), "");
    let events = Mutex::new(Vec::<String>::new());
    let on_event = |e: StreamEvent<'_>| {
        events.lock().expect("lock").push(match e {
            StreamEvent::Text(t) => t.to_string(),
            StreamEvent::Restart { attempt } => format!("<restart {attempt}>"),
        })
    };
    let streamed = client
        .complete_streaming("leader", structured(), &MemoryRecorder::new(), &on_event)
        .await
        .expect("streamed");
    let plain = client
        .complete("leader", structured(), &MemoryRecorder::new())
        .await
        .expect("plain");
    assert_eq!(streamed.json, plain.json);
    assert_eq!(streamed.text, plain.text);
    assert_eq!(streamed.finish_reason, plain.finish_reason);
    assert_eq!(
        events.lock().expect("lock").clone(),
        ["<restart 2>", "{\"steps\": ", "[\"a\"]}"]
    );
}

#[tokio::test]
async fn a_server_that_ignores_stream_is_read_whole() {
    let stub = Stub::script(vec![ok(chat("whole reply"))]).await;
    let texts = Mutex::new(Vec::<String>::new());
    let on_event = |e: StreamEvent<'_>| {
        if let StreamEvent::Text(t) = e {
            texts.lock().expect("lock").push(t.to_string());
        }
    };
    let done = client(&stub.base_url(), "")
        .complete_streaming("leader", ask(), &MemoryRecorder::new(), &on_event)
        .await
        .expect("reply");
    assert_eq!(done.text, "whole reply");
    assert_eq!(texts.lock().expect("lock").clone(), ["whole reply"]);
    assert_eq!(stub.requests()[0].body["stream"], true);
}

// ---------------------------------------------------------------------------------------------
// A caller's cap on requests (a run's budget) holds over retries and repairs.

#[tokio::test]
async fn a_call_sends_no_more_requests_than_its_cap() {
    let stub = Stub::script(vec![
        status(500, LITELLM_500),
        status(500, LITELLM_500),
        status(500, LITELLM_500),
        ok(chat(r#"{"steps": ["a"]}"#)),
    ])
    .await;
    let capped = client(&stub.base_url(), "max_retries = 4");
    let err = capped
        .complete(
            "leader",
            structured().with_max_requests(2),
            &MemoryRecorder::new(),
        )
        .await
        .expect_err("the cap stops the retries");
    assert_eq!(err.requests, 2);
    assert_eq!(stub.requests().len(), 2);

    // Repairs count too: a reply that never matches the schema gets at most the cap.
    let stub = Stub::script(vec![ok(chat(r#"{"wrong": 1}"#)); 4]).await;
    let repairing = client(&stub.base_url(), "max_retries = 4");
    let err = repairing
        .complete(
            "leader",
            structured().with_max_requests(2),
            &MemoryRecorder::new(),
        )
        .await
        .expect_err("no reply matches");
    assert_eq!(err.requests, 2);
}
