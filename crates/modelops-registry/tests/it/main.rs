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
mod harness;
mod limits;
mod models;
mod tamper;
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
);
