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

/// On SQLite the highest sequence number is kept in memory by `append`; it must be loaded from
/// the file on open, or a phone's cursor would be ahead of it after a restart and it would miss
/// every change made since.
#[tokio::test]
async fn sqlite_max_seq_survives_a_reopen() {
    use sync_core::doc::DocKind;
    use sync_core::ids::EnterpriseId;
    use sync_core::store::DocumentStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("seq.db").display());
    let enterprise = EnterpriseId::new_random();
    let db = server::db::Db::connect(&url).await.unwrap();
    assert_eq!(db.max_seq().await.unwrap(), 0);
    let doc = uuid::Uuid::from_u128(1);
    let mut last = 0;
    for i in 0u8..3 {
        last = db
            .append(doc, DocKind::Visit, enterprise, &[([i; 32], vec![i])])
            .await
            .unwrap();
        assert_eq!(db.max_seq().await.unwrap(), last, "kept after each append");
    }
    // A duplicate change draws no new number.
    db.append(doc, DocKind::Visit, enterprise, &[([0; 32], vec![0])])
        .await
        .unwrap();
    assert_eq!(db.max_seq().await.unwrap(), last);
    db.close().await;

    let reopened = server::db::Db::connect(&url).await.unwrap();
    assert_eq!(reopened.max_seq().await.unwrap(), last, "loaded on open");
    let next = reopened
        .append(doc, DocKind::Visit, enterprise, &[([9; 32], vec![9])])
        .await
        .unwrap();
    assert!(next > last);
    assert_eq!(reopened.max_seq().await.unwrap(), next);
}
