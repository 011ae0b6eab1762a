//! `template.yaml` against the code: the table, its indexes and TTL, and the queues must be what
//! `shared/src/aws/provision.rs` defines (what `maestro init-aws` creates and the store expects),
//! each function must name a binary this workspace builds, and the settings docs/ARCHITECTURE.md §8 warns
//! about (visibility timeout, batch item failures, response streaming) must hold. Every sample
//! event must be fed to its handler by some test.
//!
//! SAM's short tags (`!Ref`, `!GetAtt`, `!Sub`) parse as tagged values; the checks here only read
//! plain values, and compare tagged ones by their tag and contents.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use maestro_shared::aws::provision;
use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    let r = &t["Resources"][id];
    assert!(!r.is_null(), "template.yaml has no resource {id}");
    r
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .filter_map(|(id, r)| Some((id.as_str()?, r)))
        .collect()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, found {v:?}"))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("expected a number, found {v:?}"))
}

/// `(attribute, key type)` pairs of a KeySchema.
fn key_schema(v: &Value) -> Vec<(String, String)> {
    v.as_sequence()
        .expect("KeySchema")
        .iter()
        .map(|k| (str_of(&k["AttributeName"]).to_string(), str_of(&k["KeyType"]).to_string()))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn the_table_has_the_keys_indexes_and_ttl_provision_defines() {
    let t = template();
    let table = &resource(&t, "Table")["Properties"];

    assert_eq!(str_of(&table["BillingMode"]), "PAY_PER_REQUEST");
    let attributes: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| (str_of(&a["AttributeName"]).to_string(), str_of(&a["AttributeType"]).to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        provision::PK,
        provision::SK,
        provision::GSI_USER_PK,
        provision::GSI_USER_SK,
        provision::GSI_PROVIDER_PK,
        provision::GSI_PROVIDER_SK,
    ]
    .iter()
    .map(|a| pair(a, "S"))
    .collect();
    assert_eq!(attributes, expected);
    assert_eq!(key_schema(&table["KeySchema"]), [pair(provision::PK, "HASH"), pair(provision::SK, "RANGE")]);

    let indexes = table["GlobalSecondaryIndexes"].as_sequence().expect("GlobalSecondaryIndexes");
    assert_eq!(indexes.len(), 2);
    for (name, pk, sk) in [
        (provision::GSI_USER, provision::GSI_USER_PK, provision::GSI_USER_SK),
        (provision::GSI_PROVIDER, provision::GSI_PROVIDER_PK, provision::GSI_PROVIDER_SK),
    ] {
        let index =
            indexes.iter().find(|i| i["IndexName"].as_str() == Some(name)).unwrap_or_else(|| panic!("no index {name}"));
        assert_eq!(key_schema(&index["KeySchema"]), [pair(pk, "HASH"), pair(sk, "RANGE")], "{name}");
        assert_eq!(str_of(&index["Projection"]["ProjectionType"]), "ALL", "{name}");
    }
    assert_eq!(str_of(&table["TimeToLiveSpecification"]["AttributeName"]), provision::TTL_ATTRIBUTE);
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true));
}

#[test]
fn the_log_queue_and_its_dead_letter_queue_have_the_provisioned_settings() {
    let t = template();
    let queue = &resource(&t, "LogQueue")["Properties"];
    let dlq = &resource(&t, "LogDeadLetterQueue")["Properties"];

    assert_eq!(u64_of(&queue["VisibilityTimeout"]), u64::from(provision::LOG_QUEUE_VISIBILITY_TIMEOUT_SECS));
    assert_eq!(u64_of(&queue["MessageRetentionPeriod"]), u64::from(provision::LOG_QUEUE_RETENTION_SECS));
    assert_eq!(u64_of(&dlq["MessageRetentionPeriod"]), u64::from(provision::LOG_DLQ_RETENTION_SECS));
    let redrive = &queue["RedrivePolicy"];
    assert_eq!(u64_of(&redrive["maxReceiveCount"]), u64::from(provision::MAX_RECEIVE_COUNT));
    const { assert!(provision::MAX_RECEIVE_COUNT >= 5, "docs/ARCHITECTURE.md §8: maxReceiveCount ≥ 5") };
    let target = format!("{:?}", redrive["deadLetterTargetArn"]);
    assert!(target.contains("GetAtt") && target.contains("LogDeadLetterQueue.Arn"), "{target}");
}

#[test]
fn the_aggregator_reports_batch_item_failures_within_a_sixth_of_the_visibility_timeout() {
    let t = template();
    let aggregator = &resource(&t, "AggregatorFunction")["Properties"];
    let sqs = &aggregator["Events"]["LogQueue"];

    assert_eq!(str_of(&sqs["Type"]), "SQS");
    let failures: Vec<&str> =
        sqs["Properties"]["FunctionResponseTypes"].as_sequence().expect("types").iter().map(str_of).collect();
    assert_eq!(failures, ["ReportBatchItemFailures"]);
    assert_eq!(u64_of(&sqs["Properties"]["BatchSize"]), 10);
    assert!(
        6 * u64_of(&aggregator["Timeout"]) <= u64::from(provision::LOG_QUEUE_VISIBILITY_TIMEOUT_SECS),
        "docs/ARCHITECTURE.md §8: visibility timeout ≥ 6 × the aggregator's timeout"
    );
}

#[test]
fn chat_streams_from_a_public_function_url_and_http_functions_ignore_the_stage() {
    let t = template();
    let chat = &resource(&t, "ChatFunction")["Properties"];

    assert_eq!(str_of(&chat["FunctionUrlConfig"]["InvokeMode"]), "RESPONSE_STREAM");
    assert_eq!(str_of(&chat["FunctionUrlConfig"]["AuthType"]), "NONE");
    for id in ["ChatFunction", "AdminFunction", "StatsFunction"] {
        let vars = &resource(&t, id)["Properties"]["Environment"]["Variables"];
        assert_eq!(vars["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"].as_str(), Some("true"), "{id}");
    }
    for id in ["AdminFunction", "StatsFunction"] {
        let vars = &resource(&t, id)["Properties"]["Environment"]["Variables"];
        assert_eq!(vars["MAESTRO_ADMIN_AUTH"].as_str(), Some("authorizer"), "{id}");
    }
}

/// The chat Function URL's CORS block, present only with `CorsOrigins`, lists what the
/// function itself allows and exposes (`maestro_shared::edges`), and the function gets the same
/// origins in `MAESTRO_CORS_ORIGINS`.
#[test]
fn the_chat_url_allows_the_cors_origins_and_headers_the_function_does() {
    use maestro_shared::edges::{ALLOWED_HEADERS, EXPOSED_HEADERS};
    let t = template();
    let param = &t["Parameters"]["CorsOrigins"];
    assert_eq!((str_of(&param["Type"]), str_of(&param["Default"])), ("CommaDelimitedList", ""), "off by default");
    let chat = &resource(&t, "ChatFunction")["Properties"];
    let variable = format!("{:?}", chat["Environment"]["Variables"]["MAESTRO_CORS_ORIGINS"]);
    assert!(["Join", "\",\"", "CorsOrigins"].iter().all(|part| variable.contains(part)), "{variable}");
    let condition = format!("{:?}", t["Conditions"]["ChatHasCors"]);
    assert!(condition.contains("CorsOrigins"), "{condition}");

    let Value::Tagged(cors) = &chat["FunctionUrlConfig"]["Cors"] else { panic!("Cors is an !If") };
    assert_eq!(cors.tag.to_string(), "!If");
    let branches = cors.value.as_sequence().expect("condition, then, else");
    assert_eq!(branches[0].as_str(), Some("ChatHasCors"));
    assert!(format!("{:?}", branches[2]).contains("AWS::NoValue"));
    let block = &branches[1];
    assert!(format!("{:?}", block["AllowOrigins"]).contains("CorsOrigins"));
    let list = |name: &str| -> BTreeSet<String> {
        block[name].as_sequence().expect(name).iter().map(|v| str_of(v).to_string()).collect()
    };
    let allowed = list("AllowHeaders");
    for header in ALLOWED_HEADERS {
        assert!(allowed.contains(*header), "AllowHeaders lacks {header}");
    }
    assert!(allowed.iter().all(|h| ALLOWED_HEADERS.contains(&h.as_str()) || h.starts_with("x-stainless-")));
    for sdk in ["x-stainless-os", "x-stainless-lang", "x-stainless-retry-count", "x-stainless-timeout"] {
        assert!(allowed.contains(sdk), "AllowHeaders lacks {sdk}");
    }
    let exposed = list("ExposeHeaders");
    assert_eq!(exposed, EXPOSED_HEADERS.iter().map(|h| (*h).to_string()).collect::<BTreeSet<_>>());
    assert_eq!(list("AllowMethods"), BTreeSet::from(["GET".to_string(), "POST".to_string()]));
}

#[test]
fn chat_may_run_fifteen_minutes_with_optional_reserved_concurrency_and_the_log_consumer_is_bounded() {
    let t = template();
    let params = &t["Parameters"];

    let reserved = &params["ChatReservedConcurrency"];
    assert_eq!(str_of(&reserved["Type"]), "Number");
    assert_eq!(reserved["Default"].as_i64(), Some(-1), "unreserved by default: a new account has no room to reserve");
    assert_eq!(reserved["MinValue"].as_i64(), Some(-1));
    let unreserved = format!("{:?}", t["Conditions"]["ChatHasReservedConcurrency"]);
    assert!(
        ["Not", "Equals", "ChatReservedConcurrency", "\"-1\""].iter().all(|part| unreserved.contains(part)),
        "reserved only when the parameter is not -1: {unreserved}"
    );
    let maximum = &params["LogConsumerMaximumConcurrency"];
    assert_eq!(str_of(&maximum["Type"]), "Number");
    assert_eq!((u64_of(&maximum["MinValue"]), u64_of(&maximum["MaxValue"])), (2, 1000), "SQS's own bounds");
    assert!((2..=1000).contains(&u64_of(&maximum["Default"])));

    let chat = &resource(&t, "ChatFunction")["Properties"];
    assert_eq!(u64_of(&chat["Timeout"]), 900, "a Function URL stream may run Lambda's 15 minutes");
    let wiring = format!("{:?}", chat["ReservedConcurrentExecutions"]);
    assert!(
        ["If", "ChatHasReservedConcurrency", "ChatReservedConcurrency", "AWS::NoValue"]
            .iter()
            .all(|part| wiring.contains(part)),
        "{wiring}"
    );
    // The invocation's deadline, not a shorter stream deadline, is what ends a long stream.
    let stream_deadline_ms: u64 = str_of(&chat["Environment"]["Variables"]["MAESTRO_STREAM_DEADLINE_MS"])
        .parse()
        .expect("MAESTRO_STREAM_DEADLINE_MS is a number of milliseconds");
    assert!(stream_deadline_ms >= 1000 * u64_of(&chat["Timeout"]), "{stream_deadline_ms}");

    let sqs = &resource(&t, "AggregatorFunction")["Properties"]["Events"]["LogQueue"]["Properties"];
    let scaling = format!("{:?}", sqs["ScalingConfig"]["MaximumConcurrency"]);
    assert!(scaling.contains("Ref") && scaling.contains("LogConsumerMaximumConcurrency"), "{scaling}");

    // Behind the HTTP API an integration gets at most 30 s: admin and stats must end before it.
    let global = u64_of(&t["Globals"]["Function"]["Timeout"]);
    for id in ["AdminFunction", "StatsFunction"] {
        let timeout = resource(&t, id)["Properties"]["Timeout"].as_u64().unwrap_or(global);
        assert!(timeout < 30, "{id}: {timeout}");
    }
}

#[test]
fn only_the_api_description_and_the_admin_console_skip_the_jwt_authorizer() {
    let t = template();
    let mut open = Vec::new();
    for id in ["AdminFunction", "StatsFunction"] {
        let events = resource(&t, id)["Properties"]["Events"].as_mapping().expect("Events");
        for (name, event) in events {
            let p = &event["Properties"];
            assert_eq!(str_of(&event["Type"]), "HttpApi", "{id} {name:?}");
            if p["Auth"]["Authorizer"].as_str() == Some("NONE") {
                open.push(format!("{id} {} {}", str_of(&p["Method"]), str_of(&p["Path"])));
            } else {
                assert!(p["Auth"].is_null(), "{id} {name:?}: the API's default JWT authorizer");
            }
        }
    }
    open.sort();
    assert_eq!(
        open,
        ["AdminFunction GET /admin", "AdminFunction GET /admin/{proxy+}", "AdminFunction GET /openapi.json"],
        "the console's files and the API description hold no data; everything else needs a token"
    );
}

#[test]
fn every_function_is_built_by_cargo_lambda_from_a_binary_of_this_workspace() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(str_of(&globals["Runtime"]), "provided.al2023");
    assert_eq!(str_of(&globals["Handler"]), "bootstrap");

    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 5);
    for (id, function) in functions {
        assert_eq!(str_of(&function["Metadata"]["BuildMethod"]), "rust-cargolambda", "{id}");
        let binary = str_of(&function["Metadata"]["BuildProperties"]["Binary"]);
        let crate_dir = binary.strip_prefix("maestro-").unwrap_or_else(|| panic!("{id}: binary {binary}"));
        let dir = root().join("functions").join(crate_dir);
        assert!(dir.join("src/main.rs").is_file(), "{id}: {} has no src/main.rs", dir.display());
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        assert!(manifest.contains(&format!("name = \"{binary}\"")), "{id}: package is not {binary}");
        let logging = &function["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{id}");
        let group = format!("{:?}", logging["LogGroup"]);
        assert!(group.contains("LogGroup"), "{id}: logs to its own group with retention, not {group}");
    }
    for (id, group) in resources_of_type(&t, "AWS::Logs::LogGroup") {
        assert!(!group["Properties"]["RetentionInDays"].is_null(), "{id} keeps logs forever");
    }
}

#[test]
fn every_sample_event_is_fed_to_its_handler_by_a_test() {
    let mut tests = String::new();
    for function in std::fs::read_dir(root().join("functions")).expect("functions/") {
        let dir = function.expect("entry").path().join("tests");
        for file in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = file.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with("lambda_") && name.ends_with(".rs") {
                tests.push_str(&std::fs::read_to_string(&path).expect("test file"));
            }
        }
    }
    let mut events = 0;
    for file in std::fs::read_dir(root().join("events")).expect("events/") {
        let path = file.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".json") {
            events += 1;
            assert!(tests.contains(&format!("events/{name}")), "events/{name} is not used by any tests/lambda_*.rs");
        }
    }
    assert!(events >= 10, "found only {events} events");
}

#[test]
fn alarms_watch_chat_5xx_throttles_and_the_dead_letter_queue_and_notify_only_a_given_topic() {
    let t = template();
    let topic = &t["Parameters"]["AlarmTopicArn"];
    assert_eq!((str_of(&topic["Type"]), topic["Default"].as_str()), ("String", Some("")), "optional");
    let condition = format!("{:?}", t["Conditions"]["HasAlarmTopic"]);
    assert!(["Not", "Equals", "AlarmTopicArn", "\"\""].iter().all(|p| condition.contains(p)), "{condition}");

    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let mut watched: Vec<(String, String, String, String)> = alarms
        .iter()
        .map(|(id, alarm)| {
            let p = &alarm["Properties"];
            let dimensions = p["Dimensions"].as_sequence().expect("Dimensions");
            assert_eq!(dimensions.len(), 1, "{id}");
            let target = format!("{}={:?}", str_of(&dimensions[0]["Name"]), dimensions[0]["Value"]);
            (id.to_string(), str_of(&p["Namespace"]).to_string(), str_of(&p["MetricName"]).to_string(), target)
        })
        .collect();
    watched.sort();
    let names: Vec<(&str, &str, &str)> =
        watched.iter().map(|(id, ns, m, _)| (id.as_str(), ns.as_str(), m.as_str())).collect();
    assert_eq!(
        names,
        [
            ("ChatServerErrorsAlarm", "AWS/Lambda", "Url5xxCount"),
            ("ChatThrottlesAlarm", "AWS/Lambda", "Throttles"),
            ("LogDeadLetterQueueAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ]
    );
    for (id, _, _, target) in &watched {
        let expected =
            if id.starts_with("Chat") { ["FunctionName", "ChatFunction"] } else { ["QueueName", "LogDeadLetterQueue"] };
        assert!(expected.iter().all(|part| target.contains(part)), "{id}: {target}");
    }
    for (id, alarm) in alarms {
        let p = &alarm["Properties"];
        // Sparse metrics: no data means nothing happened.
        assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"), "{id}");
        for actions in ["AlarmActions", "OKActions"] {
            let wiring = format!("{:?}", p[actions]);
            assert!(
                ["If", "HasAlarmTopic", "AlarmTopicArn", "AWS::NoValue"].iter().all(|part| wiring.contains(part)),
                "{id} {actions}: {wiring}"
            );
        }
    }
    let dlq = &resource(&t, "LogDeadLetterQueueAlarm")["Properties"];
    assert_eq!((str_of(&dlq["ComparisonOperator"]), dlq["Threshold"].as_u64()), ("GreaterThanThreshold", Some(0)));
}
