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
    append_many_stores_every_part,
    append_many_is_all_or_nothing,
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

/// Many appends at once (on SQLite they commit in groups on the writer thread): every change
/// gets its own number, the numbers are dense, `max_seq` is the last, and a document filed
/// under the wrong enterprise in the middle of the crowd is refused alone.
async fn concurrent_appends_keep_every_change(db: server::db::Db) {
    use sync_core::doc::DocKind;
    use sync_core::ids::EnterpriseId;
    use sync_core::store::{DocumentStore, StoreError};
    let enterprise = EnterpriseId::new_random();
    let other = EnterpriseId::new_random();
    let start = db.max_seq().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0u32..200 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let doc = uuid::Uuid::from_u128(u128::from(i % 20) + 1);
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            db.append(
                doc,
                DocKind::Visit,
                enterprise,
                &[(hash, i.to_be_bytes().to_vec())],
            )
            .await
        }));
    }
    // Document 1 already belongs to `enterprise` (or will): under `other` it is refused.
    let intruder = {
        let db = db.clone();
        tokio::spawn(async move {
            // Wait for document 1 to exist, so the refusal is the kind under test.
            while db.load(uuid::Uuid::from_u128(1)).await.unwrap().is_none() {
                tokio::task::yield_now().await;
            }
            db.append(
                uuid::Uuid::from_u128(1),
                DocKind::Visit,
                other,
                &[([0xEE; 32], vec![1])],
            )
            .await
        })
    };
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap());
    }
    assert!(matches!(
        intruder.await.unwrap(),
        Err(StoreError::Conflict(id)) if id == uuid::Uuid::from_u128(1)
    ));
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 200, "each append drew its own number");
    assert_eq!(db.max_seq().await.unwrap(), start + 200);
    let all = db
        .changes_since(start, start + 200, &[enterprise, other], 1000)
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        200,
        "every change is stored, none of the intruder's"
    );
    assert!(
        all.windows(2).all(|w| w[0].seq + 1 == w[1].seq),
        "dense and ordered"
    );
}

#[tokio::test]
async fn sqlite_concurrent_appends_keep_every_change() {
    let app = tests::spawn_app(tests::Backend::Sqlite).await.unwrap();
    concurrent_appends_keep_every_change(app.state.db.clone()).await;
}

#[tokio::test]
async fn postgres_concurrent_appends_keep_every_change() {
    let Some(app) = tests::spawn_app(tests::Backend::Postgres).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant not run");
        return;
    };
    concurrent_appends_keep_every_change(app.state.db.clone()).await;
}

/// The writer thread and the readers open the file separately, so `:memory:` (two different
/// databases) is refused with a message saying what to use instead.
#[tokio::test]
async fn an_in_memory_sqlite_url_is_refused_clearly() {
    let err = server::db::Db::connect("sqlite::memory:")
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("in-memory SQLite is not supported"),
        "{message}"
    );
    assert!(message.contains("内存"), "{message}");
}

/// On SQLite `changes_since` reads short ranges on the calling thread and long ones on the
/// pool (ADR 0007). Both must return the same rows: windows of the short kind, filtered and
/// limited, put together equal one read of the long kind.
#[tokio::test]
async fn sqlite_short_and_long_ranges_of_changes_agree() {
    use sync_core::doc::DocKind;
    use sync_core::ids::EnterpriseId;
    use sync_core::store::DocumentStore;
    let app = tests::spawn_app(tests::Backend::Sqlite).await.unwrap();
    let db = app.state.db.clone();
    let ents: Vec<EnterpriseId> = (0..3).map(|_| EnterpriseId::new_random()).collect();
    let start = db.max_seq().await.unwrap();
    for i in 0u32..300 {
        let e = (i % 3) as usize;
        let doc = uuid::Uuid::from_u128(1000 + u128::from(i % 30));
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        db.append(doc, DocKind::Visit, ents[e], &[(hash, vec![e as u8; 3])])
            .await
            .unwrap();
    }
    let upto = start + 300;
    let wanted = [ents[0], ents[2]];
    // One long read (301 numbers wide: the pool).
    let long = db.changes_since(start, upto, &wanted, 1000).await.unwrap();
    assert_eq!(long.len(), 200);
    assert!(
        long.iter().all(|c| c.bytes != vec![1u8; 3]),
        "enterprise filter"
    );
    // Short windows (inline), each also cut by a limit and resumed from its last row.
    let mut short = Vec::new();
    let mut after = start;
    while after < upto {
        let window_end = (after + 100).min(upto);
        let page = db
            .changes_since(after, window_end, &wanted, 7)
            .await
            .unwrap();
        match page.last() {
            Some(last) if page.len() == 7 => after = last.seq,
            _ => after = window_end,
        }
        short.extend(page);
    }
    let key = |c: &sync_core::store::StoredChange| (c.seq, c.doc, c.hash, c.bytes.clone());
    assert_eq!(
        short.iter().map(key).collect::<Vec<_>>(),
        long.iter().map(key).collect::<Vec<_>>()
    );
}
