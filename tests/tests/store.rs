//! The server's document store runs sync-core's conformance suite on SQLite and PostgreSQL.
//! Each test gets a fresh database (dropped afterwards on PostgreSQL).
#![allow(clippy::unwrap_used)]

macro_rules! conformance {
    ($($name:ident),*) => {
        mod sqlite {$(
            #[tokio::test]
            async fn $name() {
                let app = tests::spawn_app(tests::Backend::Sqlite).await.expect("sqlite");
                sync_core::store::conformance::$name(app.state.db.clone()).await;
            }
        )*}
        mod postgres {$(
            #[tokio::test]
            async fn $name() {
                let Some(app) = tests::spawn_app(tests::Backend::Postgres).await else {
                    eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant not run");
                    return;
                };
                sync_core::store::conformance::$name(app.state.db.clone()).await;
            }
        )*}
    };
}

conformance!(
    append_and_load_round_trip,
    a_document_cannot_change_enterprise,
    compaction_keeps_everything,
    changes_since_filters_and_orders,
    kv_round_trip,
    delivery_log_round_trip
);
