//! Settled charges to SQS on moto server: what `SqsChargeSink` sends is what a platform
//! receives, one JSON `credit.charge` message per charge.

use aws_sdk_sqs::Client;
use maestro_shared::aws::emulator;
use maestro_shared::aws::sqs::SqsChargeSink;
use maestro_shared::credits::{ChargeEvent, ChargeSink};

#[tokio::test]
async fn a_charge_sent_to_the_queue_arrives_as_its_json() {
    let Some(endpoint) = emulator::test_endpoint("aws_credit_events").unwrap_or_else(|m| panic!("{m}")) else {
        return;
    };
    let sqs = Client::new(&emulator::sdk_config(&endpoint).await);
    let name = format!("maestro-credit-events-{}", uuid::Uuid::new_v4().simple());
    let created = sqs.create_queue().queue_name(&name).send().await.expect("create queue");
    let url = created.queue_url().expect("url").to_string();

    let event = ChargeEvent {
        event_type: ChargeEvent::TYPE.into(),
        id: "charge-req_1".into(),
        user_id: "user-42".into(),
        charge_micro_usd: 44,
        cost_micro_usd: 29,
        model: "openai/gpt-4o-mini".into(),
        call_id: "req_1".into(),
        ts_ms: 1_764_000_000_000,
    };
    SqsChargeSink::new(sqs.clone(), &url).send(event.clone()).await;

    let received = sqs.receive_message().queue_url(&url).wait_time_seconds(2).send().await.expect("receive");
    let bodies: Vec<ChargeEvent> =
        received.messages().iter().map(|m| serde_json::from_str(m.body().expect("body")).expect("json")).collect();
    assert_eq!(bodies, [event]);
    let _ = sqs.delete_queue().queue_url(&url).send().await;
}
