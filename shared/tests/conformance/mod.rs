//! The store conformance suite: what every backend of the store traits must do, written once as
//! `pub async fn`s over trait objects so the embedded store and DynamoDB run the very same checks.
//!
//! A backend's test binary declares `#[macro_use] mod conformance;` and calls
//! [`conformance_suite!`] with an async constructor returning `(guard, Arc<Store>)`: the guard
//! lives as long as the test (a temp dir, a table to drop), and each test gets a fresh store.

#![allow(clippy::expect_used, clippy::panic, reason = "test bodies: a failed expectation is a failed test")]

pub mod alerts;
pub mod caller_keys;
pub mod catalog;
pub mod catalog_admin;
pub mod counters;
pub mod credits;
pub mod response_cache;
pub mod secrets;
pub mod stats;

use chrono::DateTime;
use maestro_shared::logs::{CallStatus, LogEvent};

/// One `#[tokio::test]` per conformance function, on a 4-worker multi-thread runtime so the
/// concurrency tests really race. Every function must be listed here (an unlisted one shows up
/// as dead code).
macro_rules! conformance_suite {
    ($fresh:path) => {
        conformance_suite!(@modules $fresh,
            counters {
                given_rpm_50_when_200_reserve_at_once_then_exactly_50_are_granted_and_150_refused_until_the_minute_ends,
                given_rpd_3_when_reserving_in_four_different_minutes_then_the_fourth_is_refused_by_the_day_window,
                given_tpm_1000_when_a_reservation_is_reconciled_down_then_its_unused_tokens_are_free_again,
                given_a_full_day_when_the_minute_has_room_then_the_refusal_changes_neither_window,
                given_too_many_tokens_for_the_minute_then_the_refusal_changes_neither_window,
                given_a_reconcile_larger_than_the_reservation_then_tokens_stop_at_zero,
                given_a_key_without_limits_then_every_reservation_is_granted_and_nothing_is_written,
                given_rpm_640_and_rpd_700_when_800_reserve_200_at_a_time_then_exactly_640_are_granted,
                given_a_sharded_tpm_when_calls_fill_it_then_the_tokens_never_exceed_it,
            },
            stats {
                given_the_same_event_twice_then_it_is_recorded_and_counted_once,
                given_two_events_on_the_same_day_provider_model_key_and_route_then_their_counters_sum_exactly,
                given_rows_on_several_days_then_stats_rows_filter_by_inclusive_dates_and_exact_fields_in_key_order,
                given_logged_calls_then_logs_come_newest_first_and_filter_by_time_provider_user_and_request_id,
                given_more_than_a_thousand_logs_then_the_limit_defaults_to_100_and_caps_at_1000,
                given_logs_of_several_models_and_outcomes_then_they_filter_by_model_and_status_and_page_with_a_cursor,
                given_a_call_that_tried_several_keys_then_each_key_row_counts_its_attempts_and_cache_writes_are_kept,
                given_batches_with_redelivered_events_then_each_event_counts_once_even_when_batches_race,
                given_logs_over_several_hours_when_paged_by_seven_then_every_log_comes_once_newest_first,
                given_calls_through_routes_then_logs_keep_the_rule_and_filter_by_the_exact_route,
                given_calls_through_routes_then_stats_rows_count_per_route_exactly_once,
                given_calls_in_several_minutes_then_minute_caller_and_caller_key_rows_count_each_call_once,
                given_logs_of_several_models_and_users_then_partial_matches_ignore_case_and_counts_stop_at_the_cap,
                given_a_call_with_an_attempt_log_then_every_entry_reads_back_in_order,
            },
            catalog_admin {
                given_a_created_provider_when_updated_with_its_version_then_it_moves_on_and_stale_or_unknown_writes_fail,
                given_models_when_one_becomes_the_default_then_the_others_lose_it_and_versions_guard_every_write,
                given_a_created_key_then_versioned_updates_keep_its_health_and_deletes_check_the_version,
                given_routes_then_create_update_and_delete_are_versioned_and_the_catalog_follows,
                given_recorded_calls_then_their_key_shows_when_it_was_last_used_and_last_failed,
                given_key_errors_then_the_newest_is_kept_apart_from_the_version_and_unknown_keys_are_not_found,
                given_a_provider_with_models_then_it_is_deleted_with_them_only_once_it_has_no_key_and_at_its_version,
            },
            catalog {
                given_a_new_store_then_the_catalog_is_empty,
                given_a_full_catalog_when_loaded_then_it_round_trips_in_sort_order,
                given_existing_rows_when_upserted_again_then_they_are_replaced_by_primary_key,
                given_an_admin_edit_when_seeding_inserts_the_model_again_then_the_edit_stays,
                given_a_key_when_its_status_is_set_then_status_and_cooldown_change_and_unknown_keys_are_not_found,
                given_a_key_when_deleted_then_it_is_gone_and_a_second_delete_is_not_found,
            },
            alerts {
                given_alert_records_then_writes_are_versioned_and_kinds_stay_apart,
                given_history_entries_then_they_read_newest_first_up_to_the_limit,
                given_two_evaluators_then_only_one_holds_the_lease_until_it_runs_out,
            },
            response_cache {
                given_a_stored_answer_then_it_reads_back_exactly_until_it_expires,
                given_an_answer_when_stored_again_then_the_newer_one_replaces_it,
            },
            secrets {
                given_a_stored_secret_then_it_reads_back_and_an_unknown_ref_is_not_found_without_any_secret_value,
                given_a_secret_when_replaced_and_deleted_then_reads_follow_and_deleting_again_succeeds,
            },
            credits {
                given_top_ups_then_the_balance_adds_up_and_the_ledger_pages_newest_first,
                given_a_balance_for_20_calls_when_200_hold_at_once_then_exactly_20_run_and_settle_exactly,
                given_a_settled_call_when_settled_again_then_nothing_changes,
                given_too_little_credit_then_the_hold_is_refused_and_changes_nothing,
            },
            caller_keys {
                given_new_caller_keys_then_they_are_found_by_hash_and_listed_newest_first,
                given_an_existing_id_or_hash_when_created_again_then_it_is_a_conflict,
                given_a_key_when_revoked_then_lookups_see_it_and_a_second_revoke_keeps_the_first_time,
                given_a_caller_key_rpm_of_20_when_50_reserve_at_once_then_exactly_20_are_granted,
                given_a_daily_token_budget_then_reservations_stop_at_it_and_a_reconcile_gives_tokens_back,
                given_a_daily_cost_budget_then_reservations_stop_at_it_and_costs_reconcile_exactly_but_never_below_zero,
                given_a_caller_key_refusal_then_neither_window_changes,
            }
        );
    };
    (@modules $fresh:path, $($module:ident { $($name:ident),* $(,)? }),* $(,)?) => {
        $(mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (_guard, store) = $fresh().await;
                    crate::conformance::$module::$name(store).await;
                }
            )*
        })*
    };
}

/// A UTC instant in unix ms, written the way people read it.
pub fn at(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).expect("a valid RFC 3339 timestamp").timestamp_millis()
}

/// A successful, unremarkable call: 120 prompt tokens (20 cached), 30 completion, 4,500 µUSD,
/// 420 ms.
pub fn event(request_id: &str, ts_ms: i64) -> LogEvent {
    LogEvent::sample(request_id, ts_ms)
}

/// A failed streamed call that went through a route and retried: every optional field set
/// differently from [`event`].
pub fn failed_event(request_id: &str, ts_ms: i64) -> LogEvent {
    LogEvent {
        user_id: None,
        route: Some("smart".to_string()),
        stream: true,
        status: CallStatus::Error,
        http_status: 502,
        error_code: Some("upstream_error".to_string()),
        error_message: Some("provider answered 503 three times".to_string()),
        prompt_tokens: 80,
        completion_tokens: 0,
        cached_tokens: 0,
        cost_micros: 0,
        latency_ms: 1_500,
        ttfb_ms: None,
        attempts: 3,
        ..event(request_id, ts_ms)
    }
}
