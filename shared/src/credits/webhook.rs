//! Charges to an HTTPS endpoint of the platform: one JSON `POST` per event, signed with
//! `x-maestro-signature: sha256=<hex HMAC-SHA256 of the body>` when a secret is set. Sent from a
//! task of its own, so a slow receiver never slows a call; a failure (no answer, not 2xx) is
//! tried again with growing waits, then logged with the event (the ledger holds it too).

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::{ChargeEvent, ChargeSink};
use crate::secret::SecretString;

/// Tries per event, and the first wait between them (doubling).
const TRIES: u32 = 6;
const FIRST_WAIT: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(10);
/// Events waiting for the sender beyond this are logged instead of queued.
const QUEUE: usize = 10_000;

/// The signature header of a body.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes a key of any length: never here.
        Err(_) => String::new(),
    }
}

/// The webhook sink; its sender task runs on the runtime it was made on.
pub struct WebhookSink {
    tx: mpsc::Sender<ChargeEvent>,
}

impl WebhookSink {
    /// A sink posting to `url` (checked by the caller: `http(s)://…`).
    pub fn start(url: String, secret: Option<SecretString>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        let (tx, mut rx) = mpsc::channel::<ChargeEvent>(QUEUE);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                deliver(&http, &url, secret.as_ref(), &event).await;
            }
        });
        Ok(Self { tx })
    }
}

async fn deliver(http: &reqwest::Client, url: &str, secret: Option<&SecretString>, event: &ChargeEvent) {
    let Ok(body) = serde_json::to_vec(event) else { return };
    let mut wait = FIRST_WAIT;
    for attempt in 1..=TRIES {
        let mut request = http.post(url).header("content-type", "application/json");
        if let Some(secret) = secret {
            request = request.header("x-maestro-signature", signature(secret, &body));
        }
        match request.body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::warn!(id = %event.id, status = r.status().as_u16(), attempt, "charge webhook refused"),
            Err(e) => tracing::warn!(id = %event.id, error = %e, attempt, "charge webhook unreachable"),
        }
        if attempt < TRIES {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::error!(undelivered_charge = %String::from_utf8_lossy(&body), "charge event not delivered; the ledger holds it");
}

#[async_trait]
impl ChargeSink for WebhookSink {
    async fn send(&self, event: ChargeEvent) {
        if let Err(e) = self.tx.try_send(event) {
            let event = match e {
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => event,
            };
            tracing::error!(id = %event.id, user_id = %event.user_id, charge = event.charge_micro_usd, "charge event not queued; the ledger holds it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = signature(&SecretString::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
