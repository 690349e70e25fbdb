//! The registry's use cases on both storage backends: every case is written
//! once, as `async fn case(ctx: &Ctx)`, and runs against SQLite (a temp
//! file) and PostgreSQL (a fresh schema per test, from
//! `MODELOPS_TEST_POSTGRES_URL`; run through `scripts/with-postgres`). This
//! is also the stores' conformance suite: the use cases are what drives
//! their transactions.

// Helpers shared by the cases are not `#[test]` functions, so clippy.toml's
// test allowance does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aliases_tags;
mod audit;
mod connect;
mod deployments;
mod deployments_store;
mod governance;
mod governance_store;
mod harness;
mod limits;
mod mlflow;
mod models;
mod replicas;
mod tamper;
mod tracking;
mod transparency;
mod upgrade;
mod versions;

/// Instantiates each `module::case` once per backend.
macro_rules! conformance {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let ctx = crate::harness::sqlite().await;
                    crate::$module::$case(&ctx).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(ctx) = crate::harness::postgres().await else { return };
                    crate::$module::$case(&ctx).await;
                }
            )*
        }
    };
}

conformance!(
    replicas::one_replica_leads_until_its_lease_expires_or_is_given_up,
    replicas::of_replicas_asking_at_once_exactly_one_leads,
    governance::high_tier_walk_with_two_independent_validators,
    governance::an_expired_approval_no_longer_counts,
    governance::a_rejection_ends_validation,
    governance::low_and_medium_tiers_need_less,
    governance::critical_needs_a_risk_officer_and_no_overdue_review,
    governance::champion_is_moved_only_by_promotion,
    governance::developers_are_scoped_to_their_models,
    governance::tokens_sign_in_until_expired_revoked_or_disabled,
    governance::policies_load_whole_or_not_at_all,
    governance::reports_speak_from_the_registry,
    governance::stepping_out_of_production_keeps_the_review_due,
    models::create_and_get_model,
    models::duplicate_name_is_already_exists,
    models::unknown_model_is_not_found,
    models::dependencies_must_name_registered_models,
    models::update_changes_fields_and_updated_at,
    models::retire_model_retires_versions_and_aliases,
    models::list_models_filters,
    models::list_models_orderings,
    models::list_models_pages,
    versions::versions_are_numbered_per_model,
    versions::parent_version_must_exist,
    versions::only_description_and_card_change,
    versions::retire_version_removes_its_aliases,
    versions::list_versions_filters_orders_and_pages,
    versions::concurrent_creators_each_get_their_own_number,
    aliases_tags::aliases_set_move_and_delete,
    aliases_tags::tags_on_models_and_versions,
    audit::every_mutation_records_one_event,
    audit::failed_mutations_record_nothing,
    audit::list_events_filters_and_pages,
    audit::chain_verifies_and_head_matches,
    audit::a_refusal_names_its_reasons_and_is_audited,
    audit::verification_is_reused_while_fresh,
    limits::long_tag_values_are_stored_and_found,
    limits::nul_in_filters_is_refused_naming_the_parameter,
    limits::counts_are_capped,
    tamper::triggers_refuse_rewriting_history,
    tamper::editing_and_deleting_events_is_detected,
    upgrade::legacy_events_keep_verifying_and_new_ones_continue_the_chain,
    transparency::checkpoints_and_proofs_hold_and_forgeries_do_not,
    transparency::a_rewritten_history_is_caught_against_a_witness,
    transparency::the_signer_hashes_again_only_what_it_did_not_append,
    transparency::an_erased_person_stays_erased_and_the_log_verifies,
    transparency::two_writers_keep_one_tree_and_an_erasure_on_one_holds_on_the_other,
);

/// The governance storage through the store's traits directly, in a module
/// of its own so that `cargo test --test it governance_store` selects it.
mod governance_store_cases {
    conformance!(
        governance_store::users_insert_lock_update_list_and_count,
        governance_store::tokens_are_stored_with_their_hash_listed_and_revoked,
        governance_store::approvals_evidence_and_reviews_round_trip_exactly,
        governance_store::review_schedule_upserts_clears_and_orders,
        governance_store::the_policy_loaded_last_is_active,
        governance_store::model_developers_and_validation_round_trip,
        governance_store::the_governance_record_is_append_only_in_the_database,
        governance_store::a_dropped_transaction_leaves_nothing,
        tracking::experiments_and_runs_round_trip,
        tracking::dataset_inputs_round_trip_once_per_run,
        tracking::only_trackers_record_and_refusals_are_audited,
        tracking::requests_dropped_mid_write_leave_writes_working,
        mlflow::artifacts_logged_models_and_immutable_versions,
        mlflow::deletes_are_retirements_and_names_come_back,
        mlflow::model_listing_follows_every_change_from_any_replica,
        mlflow::multipart_uploads_are_their_starters_and_expire,
        mlflow::stages_are_the_governed_lifecycle,
        deployments_store::deployments_store_round_trip,
        deployments_store::prediction_records_append_page_and_prune,
        deployments::only_approved_versions_through_the_gate_take_traffic,
        deployments::an_expired_approval_keeps_a_version_from_traffic,
        deployments::racing_changes_one_wins_the_other_conflicts,
        deployments::what_a_deployment_runs_is_not_retired_under_it,
        deployments::a_rollback_never_waits_on_a_gate_and_edits_do_not_promote,
    );
}
