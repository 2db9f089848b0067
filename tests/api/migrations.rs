//! The migration runner against a real database: idempotence, status, edit and unknown
//! detection, atomicity, and concurrent runs.

use chatd::db::migrate::{self, MigrateError, Migration};

use crate::helpers::TestDb;

fn embedded() -> Vec<Migration> {
    migrate::embedded().unwrap()
}

#[tokio::test]
async fn migrations_apply_once_and_status_reports_them() {
    let db = TestDb::empty().await;
    let mut client = db.client().await;
    let all = embedded();
    let before = migrate::status(&client, &all).await.unwrap();
    assert!(before
        .iter()
        .all(|s| s.applied_at.is_none() && s.state == migrate::State::Pending));

    let applied = migrate::run(&mut client, &all).await.unwrap();
    assert_eq!(applied.len(), all.len());
    assert!(
        migrate::run(&mut client, &all).await.unwrap().is_empty(),
        "second run applies nothing"
    );
    let after = migrate::status(&client, &all).await.unwrap();
    assert!(after
        .iter()
        .all(|s| s.applied_at.is_some() && s.state == migrate::State::Applied));
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, all.len());
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let db = TestDb::empty().await;
    let mut client = db.client().await;
    migrate::run(&mut client, &embedded()).await.unwrap();
    let mut edited = embedded();
    edited[0].sql.push_str("\n-- a harmless-looking edit\n");
    let err = migrate::run(&mut client, &edited).await.unwrap_err();
    assert!(matches!(err, MigrateError::Edited { .. }), "{err}");
    assert!(err.to_string().contains("0001_accounts"), "{err}");
    // Status reports it rather than refusing.
    let status = migrate::status(&client, &edited).await.unwrap();
    assert!(matches!(status[0].state, migrate::State::Edited { .. }), "{status:?}");
    assert!(matches!(status[0].problem(&edited), Some(MigrateError::Edited { .. })));
}

#[tokio::test]
async fn a_migration_unknown_to_this_binary_is_refused() {
    let db = TestDb::empty().await;
    let mut client = db.client().await;
    let mut newer = embedded();
    newer.push(Migration {
        version: 999,
        name: "from_the_future".into(),
        sql: "SELECT 1".into(),
    });
    migrate::run(&mut client, &newer).await.unwrap();
    let err = migrate::run(&mut client, &embedded()).await.unwrap_err();
    assert!(
        matches!(err, MigrateError::Unknown(ref l) if l == "0999_from_the_future"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind() {
    let db = TestDb::empty().await;
    let mut client = db.client().await;
    let mut broken = embedded();
    let next = broken.len() as i32 + 1;
    broken.push(Migration {
        version: next,
        name: "broken".into(),
        sql: "CREATE TABLE half_done (id int); SELECT no_such_column FROM half_done;".into(),
    });
    let err = migrate::run(&mut client, &broken).await.unwrap_err();
    assert!(matches!(err, MigrateError::Failed { .. }), "{err}");
    let exists: bool = client
        .query_one("SELECT to_regclass('half_done') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!exists, "the failed migration's DDL was rolled back");
    let status = migrate::status(&client, &broken).await.unwrap();
    assert!(status.last().unwrap().applied_at.is_none());
    assert!(
        status[..status.len() - 1].iter().all(|s| s.applied_at.is_some()),
        "earlier ones stay applied"
    );
}

#[tokio::test]
async fn concurrent_runs_are_serialised() {
    let db = TestDb::empty().await;
    let mut a = db.client().await;
    let mut b = db.client().await;
    let all = embedded();
    let (ra, rb) = tokio::join!(migrate::run(&mut a, &all), migrate::run(&mut b, &all));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.len() + rb.len(), all.len(), "each migration applied exactly once");
}
