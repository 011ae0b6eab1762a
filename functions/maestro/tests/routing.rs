//! Smart routing end to end over the local runner: each rule's condition picks the target it
//! should, the strategies order targets by weight, price and latency, targets whose window is too
//! small or whose error rate is high are passed over, and every decision is in the headers, the
//! call log and the stats. Each provider is its own fake upstream, so which one a call reached is
//! counted where it arrived.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{FakeProvider, TestApp, hello, spawn_app};

/// A model of a test provider: `(name, input price, output price, context window)`.
type TestModel<'a> = (&'a str, u64, u64, u64);

/// One OpenAI-compatible provider per fake upstream: `(code, url, models)`, with one working key.
fn providers(list: &[(&str, &str, &[TestModel<'_>])]) -> String {
    let mut c = String::new();
    for (code, url, models) in list {
        c.push_str(&format!(
            "\n[[providers]]\ncode = \"{code}\"\nkind = \"openai_compatible\"\nbase_url = \"{url}\"\n"
        ));
        for (model, input, output, window) in *models {
            c.push_str(&format!(
                "\n[[models]]\nprovider = \"{code}\"\nmodel = \"{model}\"\ninput_price = {input}\noutput_price = {output}\n\
                 context_window = {window}\nsupports_tools = true\nsupports_vision = true\n"
            ));
        }
        c.push_str(&format!(
            "\n[[keys]]\nprovider = \"{code}\"\nname = \"k\"\nsecret = \"sk-ok-{code}{code}{code}{code}\"\n"
        ));
    }
    c
}

/// Retries off and a key breaker that never trips: a failing upstream shows in the target's own
/// circuit only.
const ONE_ATTEMPT: &str = r#"
[retry]
max_retries = 0
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 5000
deadline_ms = 20000
failure_threshold = 1000
"#;

async fn call(app: &TestApp, token: &str, tags: Option<&str>, body: Value) -> (u16, Value, [String; 3]) {
    let mut request = app.http.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(token).json(&body);
    if let Some(tags) = tags {
        request = request.header("x-maestro-tags", tags);
    }
    let r = request.send().await.unwrap();
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let explained = [header("x-maestro-route"), header("x-maestro-route-rule"), header("x-maestro-model")];
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null), explained)
}

fn said(model: &str, content: Value) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn each_condition_picks_its_target_and_the_choice_is_in_headers_log_and_stats() {
    let (ds, gpt, claude) = (FakeProvider::start().await, FakeProvider::start().await, FakeProvider::start().await);
    let mut config = String::from(ONE_ATTEMPT);
    config += &providers(&[
        ("ds", &ds.url, &[("deepseek-chat", 270_000, 1_100_000, 64_000)]),
        ("gpt", &gpt.url, &[("gpt-4o-mini", 150_000, 600_000, 128_000), ("gpt-4o", 2_500_000, 10_000_000, 128_000)]),
        ("claude", &claude.url, &[("sonnet", 3_000_000, 15_000_000, 200_000)]),
    ]);
    config += r#"
[[routes]]
name = "compose"
targets = ["gpt/gpt-4o-mini", "claude/sonnet"]
[[routes.rules]]
when = { cjk_share_at_least = 0.3, tag = "lyrics" }
targets = ["ds/deepseek-chat", "gpt/gpt-4o-mini"]
[[routes.rules]]
when = { has_images = true }
targets = ["gpt/gpt-4o"]
[[routes.rules]]
when = { prompt_tokens_over = 2000 }
targets = ["claude/sonnet"]
[[routes.rules]]
when = { has_tools = true, user = "vip-*" }
targets = ["claude/sonnet", "gpt/gpt-4o"]
[[routes.rules]]
when = { cjk_share_at_least = 0.3 }
targets = ["gpt/gpt-4o"]
"#;
    let app = spawn_app(&config, &[]).await;
    let vip = app.app.auth.issue("vip-7", false, Duration::from_secs(600)).unwrap();
    let tools = |model: &str| {
        let mut body = hello(model);
        body["tools"] = json!([{"type": "function", "function": {"name": "rhyme", "parameters": {"type": "object"}}}]);
        body
    };
    let image = json!([
        {"type": "text", "text": "Describe this cover art."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    ]);
    // (what, token, x-maestro-tags, body, the rule expected, the target expected)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Value, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "Chinese lyrics",
            &app.token,
            Some("draft, lyrics"),
            said("compose", json!("写一首关于夏天的歌词")),
            "0",
            "ds/deepseek-chat",
        ),
        ("an image", &app.token, None, said("compose", image), "1", "gpt/gpt-4o"),
        ("a long prompt", &app.token, None, said("compose", json!("word ".repeat(3_000))), "2", "claude/sonnet"),
        ("a short prompt", &app.token, None, said("compose", json!("word ".repeat(100))), "default", "gpt/gpt-4o-mini"),
        ("tools from a vip", &vip, None, tools("compose"), "3", "claude/sonnet"),
        ("tools from anyone else", &app.token, None, tools("compose"), "default", "gpt/gpt-4o-mini"),
        ("Chinese without the tag", &app.token, Some("draft"), said("compose", json!("夏天的歌")), "4", "gpt/gpt-4o"),
        (
            "mostly English",
            &app.token,
            Some("lyrics"),
            said("compose", json!("a summer song: 夏天")),
            "default",
            "gpt/gpt-4o-mini",
        ),
    ];
    let mut expected_rules: Vec<String> = Vec::new();
    for (what, token, tags, body, rule, model) in cases {
        let before = (ds.total_calls(), gpt.total_calls(), claude.total_calls());
        let (status, answer, explained) = call(&app, token, tags, body).await;
        assert_eq!(status, 200, "{what}: {answer}");
        assert_eq!(explained, ["compose".to_string(), rule.to_string(), model.to_string()], "{what}");
        let after = (ds.total_calls(), gpt.total_calls(), claude.total_calls());
        let reached = match model.split('/').next() {
            Some("ds") => (before.0 + 1, before.1, before.2),
            Some("gpt") => (before.0, before.1 + 1, before.2),
            _ => (before.0, before.1, before.2 + 1),
        };
        assert_eq!(after, reached, "{what}: only {model}'s upstream was called");
        expected_rules.push(rule.to_string());
    }
    // A model named directly is no route: no route headers.
    let (status, _, explained) = call(&app, &app.token, Some("lyrics"), hello("gpt/gpt-4o-mini")).await;
    assert_eq!((status, &explained[..2]), (200, &[String::new(), String::new()][..]));
    // The call log has the route and the rule of each call, and filters by route.
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logs = app.admin_get("/api/admin/ai-stats/logs?route=compose&limit=50").await;
    let mut rules: Vec<String> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["route"], "compose", "{e}");
            e["route_rule"].as_str().unwrap().to_string()
        })
        .collect();
    rules.reverse();
    assert_eq!(rules, expected_rules, "newest first in the log; in call order here");
    // Stats per route: the eight routed calls, the direct one in no route.
    let usage = app.usage("group_by=route").await;
    let groups = usage["groups"].as_array().unwrap();
    let compose = groups.iter().find(|g| g["group"] == "compose").unwrap_or_else(|| panic!("{usage}"));
    assert_eq!(compose["usage"]["requests"], 8, "{usage}");
}

#[tokio::test]
async fn weighted_splits_calls_in_proportion() {
    let (a, b) = (FakeProvider::start().await, FakeProvider::start().await);
    let mut config = String::from(ONE_ATTEMPT);
    config += &providers(&[("a", &a.url, &[("m", 1, 1, 100_000)]), ("b", &b.url, &[("m", 1, 1, 100_000)])]);
    config +=
        "\n[[routes]]\nname = \"split\"\nstrategy = \"weighted\"\ntargets = [\"a/m\", \"b/m\"]\nweights = [3, 1]\n";
    let app = spawn_app(&config, &[]).await;
    for _ in 0..400 {
        let (status, _, explained) = call(&app, &app.token, None, hello("split")).await;
        assert_eq!((status, explained[1].as_str()), (200, "default"));
    }
    let (to_a, to_b) = (a.total_calls(), b.total_calls());
    assert_eq!(to_a + to_b, 400, "one attempt per call");
    // 300 expected; ±45 is more than five standard deviations (8.7).
    assert!((255..=345).contains(&to_a), "a got {to_a} of 400, b {to_b}");
}

#[tokio::test]
async fn cheapest_weighs_the_prompt_and_the_answer_it_expects() {
    let (dear, cheap, bulk) = (FakeProvider::start().await, FakeProvider::start().await, FakeProvider::start().await);
    let mut config = String::from(ONE_ATTEMPT);
    config += &providers(&[
        ("dear", &dear.url, &[("m", 2_500_000, 10_000_000, 128_000)]),
        ("cheap", &cheap.url, &[("m", 270_000, 1_100_000, 128_000)]),
        // Cheap to read, dear to write: the best for long prompts with short answers.
        ("bulk", &bulk.url, &[("m", 100_000, 20_000_000, 128_000)]),
    ]);
    config +=
        "\n[[routes]]\nname = \"thrifty\"\nstrategy = \"cheapest\"\ntargets = [\"dear/m\", \"bulk/m\", \"cheap/m\"]\n";
    let app = spawn_app(&config, &[]).await;

    let mut short = hello("thrifty");
    short["max_tokens"] = json!(2_000);
    let (status, _, explained) = call(&app, &app.token, None, short).await;
    assert_eq!((status, explained[2].as_str()), (200, "cheap/m"), "a long answer: output price decides");

    let mut long = said("thrifty", json!("verse ".repeat(5_000)));
    long["max_tokens"] = json!(1);
    let (status, _, explained) = call(&app, &app.token, None, long).await;
    assert_eq!((status, explained[2].as_str()), (200, "bulk/m"), "a long prompt, one token out: input price decides");
    assert_eq!((dear.total_calls(), cheap.total_calls(), bulk.total_calls()), (0, 1, 1));
}

#[tokio::test]
async fn fastest_moves_to_the_other_target_when_the_quick_one_slows() {
    let (a, b) = (FakeProvider::start().await, FakeProvider::start().await);
    b.set_delay(Duration::from_millis(150));
    let mut config = String::from(ONE_ATTEMPT);
    config += &providers(&[("a", &a.url, &[("m", 1, 1, 100_000)]), ("b", &b.url, &[("m", 1, 1, 100_000)])]);
    config += "\n[[routes]]\nname = \"quick\"\nstrategy = \"fastest\"\ntargets = [\"a/m\", \"b/m\"]\n";
    let app = spawn_app(&config, &[]).await;
    let served_by = |explained: [String; 3]| explained[2].clone();

    // Each target is timed once, then the quick one takes (almost) every call.
    let mut first = Vec::new();
    for _ in 0..30 {
        let (status, _, explained) = call(&app, &app.token, None, hello("quick")).await;
        assert_eq!(status, 200);
        first.push(served_by(explained));
    }
    assert_eq!(&first[..2], ["a/m", "b/m"], "untimed targets are tried first, in order");
    let to_a = first[2..].iter().filter(|m| *m == "a/m").count();
    // One call in 20 explores (goes to b): 20 of 28 leaves room for chance and a loaded machine.
    assert!(to_a >= 20, "a is quicker: {to_a} of 28 ({first:?})");

    // a slows down far past b: within a few calls b takes over.
    a.set_delay(Duration::from_millis(600));
    let mut then = Vec::new();
    for _ in 0..24 {
        let (status, _, explained) = call(&app, &app.token, None, hello("quick")).await;
        assert_eq!(status, 200);
        then.push(served_by(explained));
    }
    let last_to_b = then[12..].iter().filter(|m| *m == "b/m").count();
    assert!(last_to_b >= 8, "b is quicker now: {last_to_b} of the last 12 ({then:?})");
}

#[tokio::test]
async fn targets_whose_window_is_too_small_are_skipped_and_a_prompt_no_window_holds_is_a_400() {
    let (small, big) = (FakeProvider::start().await, FakeProvider::start().await);
    let mut config = String::from(ONE_ATTEMPT);
    config += &providers(&[("small", &small.url, &[("m", 1, 1, 1_000)]), ("big", &big.url, &[("m", 1, 1, 16_000)])]);
    config += "\n[[routes]]\nname = \"long\"\ntargets = [\"small/m\", \"big/m\"]\n";
    let app = spawn_app(&config, &[]).await;

    let (status, _, explained) = call(&app, &app.token, None, hello("long")).await;
    assert_eq!((status, explained[2].as_str()), (200, "small/m"), "a short prompt fits the first");
    let (status, _, explained) = call(&app, &app.token, None, said("long", json!("word ".repeat(3_000)))).await;
    assert_eq!((status, explained[2].as_str()), (200, "big/m"), "3,000 tokens do not fit 1,000");
    let mut too_much = said("long", json!("word ".repeat(3_000)));
    too_much["max_tokens"] = json!(14_000);
    let (status, error, _) = call(&app, &app.token, None, too_much).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "context_length_exceeded", "{error}");
    assert_eq!(error["error"]["param"], "messages");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("16000 tokens") && message.contains("big/m") && message.contains("14000"), "{message}");
    assert_eq!((small.total_calls(), big.total_calls()), (1, 1), "the refused call reached no upstream");
}

#[tokio::test]
async fn a_target_failing_most_calls_is_tried_only_after_the_healthy_one() {
    let flaky = FakeProvider::start().await;
    let steady = FakeProvider::start().await;
    let mut config = String::from(ONE_ATTEMPT);
    config += &providers(&[("steady", &steady.url, &[("m", 1, 1, 100_000)])]);
    config += &format!(
        "\n[[providers]]\ncode = \"flaky\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n\
         [[models]]\nprovider = \"flaky\"\nmodel = \"m\"\n\
         [[keys]]\nprovider = \"flaky\"\nname = \"k\"\nsecret = \"sk-500-flakyflaky\"\n",
        flaky.url
    );
    config += "\n[[routes]]\nname = \"sturdy\"\ntargets = [\"flaky/m\", \"steady/m\"]\n";
    let app = spawn_app(&config, &[]).await;
    for i in 0..5 {
        let (status, _, explained) = call(&app, &app.token, None, hello("sturdy")).await;
        assert_eq!((status, explained[2].as_str()), (200, "steady/m"), "call {i} fell back");
    }
    assert_eq!(flaky.total_calls(), 5, "tried first each time while its error rate built up");
    for _ in 0..5 {
        let (status, _, explained) = call(&app, &app.token, None, hello("sturdy")).await;
        assert_eq!((status, explained[2].as_str()), (200, "steady/m"));
    }
    assert_eq!(flaky.total_calls(), 5, "5 of 5 failed: its circuit opened, the healthy target goes first");
    assert_eq!(app.key_status("flaky-k").await, "normal", "the key's own breaker never tripped: this is the target's");
}
