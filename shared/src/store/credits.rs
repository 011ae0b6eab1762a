//! Users' credits: a balance in micro-USD per user that every call draws on (docs/ARCHITECTURE.md
//! §10). A call *holds* its largest possible charge before it goes out — only if the available
//! balance covers it — and *settles* when it is recorded: the hold is released and the real
//! charge taken, with a ledger entry named by the call. So concurrent calls never spend more than
//! the balance held for them, and a settle that is repeated (a retry after a lost answer) counts
//! once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// A user's credits: `available` can be held by new calls; `held` is held by calls in flight.
/// The balance is their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAccount {
    pub available_micros: i64,
    pub held_micros: i64,
}

impl CreditAccount {
    pub fn balance_micros(&self) -> i64 {
        self.available_micros + self.held_micros
    }
}

/// What moved a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// An admin added credits.
    TopUp,
    /// A call was charged.
    Charge,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TopUp => "top_up",
            Self::Charge => "charge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "top_up" => Some(Self::TopUp),
            "charge" => Some(Self::Charge),
            _ => None,
        }
    }
}

/// One line of a user's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `topup-<uuid>` for a top-up, `charge-<call id>` for a charge.
    pub id: String,
    pub user_id: String,
    pub ts_ms: i64,
    pub kind: LedgerKind,
    /// Added (top-up, positive) or taken (charge, negative), micro-USD.
    pub amount_micros: i64,
    /// Why (a top-up's reason; a charge's model).
    pub reason: Option<String>,
    /// Who (the admin who topped up).
    pub actor: Option<String>,
    /// The call charged (its request id).
    pub call_id: Option<String>,
}

impl LedgerEntry {
    /// A top-up's entry (a new id each time: two top-ups are two entries).
    pub fn top_up(t: &TopUp<'_>) -> Self {
        Self {
            id: format!("topup-{}", uuid::Uuid::now_v7()),
            user_id: t.user_id.to_string(),
            ts_ms: t.at_ms,
            kind: LedgerKind::TopUp,
            amount_micros: t.amount_micros,
            reason: Some(t.reason.to_string()),
            actor: Some(t.actor.to_string()),
            call_id: None,
        }
    }

    /// A call's charge: its id is the call's, so a second settle finds it there.
    pub fn charge(s: &Settlement<'_>) -> Self {
        Self {
            id: format!("charge-{}", s.call_id),
            user_id: s.user_id.to_string(),
            ts_ms: s.ts_ms,
            kind: LedgerKind::Charge,
            amount_micros: -s.charge_micros,
            reason: Some(s.model.to_string()),
            actor: None,
            call_id: Some(s.call_id.to_string()),
        }
    }
}

/// A top-up as an admin asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp<'a> {
    pub user_id: &'a str,
    pub amount_micros: i64,
    pub reason: &'a str,
    pub actor: &'a str,
    pub at_ms: i64,
}

/// A call's settlement: the hold it made and what it really costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement<'a> {
    pub user_id: &'a str,
    pub held_micros: i64,
    pub charge_micros: i64,
    /// The call's request id: one charge per call, however often the settle is tried.
    pub call_id: &'a str,
    /// When the call started (the ledger entry's time, the same on a retried settle).
    pub ts_ms: i64,
    /// The model charged, for the ledger.
    pub model: &'a str,
}

/// Credits on a backend; every method is exact under concurrency.
#[async_trait]
pub trait CreditStore: Send + Sync {
    /// Adds credits and writes the ledger entry, in one step.
    async fn top_up(&self, top_up: &TopUp<'_>) -> Result<LedgerEntry, StoreError>;
    /// The user's account (zeros for a user never topped up).
    async fn credit_account(&self, user_id: &str) -> Result<CreditAccount, StoreError>;
    /// Holds `amount` of the available balance, only if it is there; `false` (nothing written)
    /// when it is not.
    async fn hold_credits(&self, user_id: &str, amount_micros: i64) -> Result<bool, StoreError>;
    /// Releases the hold and takes the charge, with its ledger entry, in one step; a second
    /// settle of the same call changes nothing. The charge may exceed the hold (an estimate
    /// short of the truth): the balance then goes below zero by the difference.
    async fn settle_credits(&self, settlement: &Settlement<'_>) -> Result<(), StoreError>;
    /// The user's ledger, newest first, `limit` entries before `before` (`(ts_ms, id)`).
    async fn credit_ledger(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError>;
}
