//! Two replicas of a service append to one trail in a shared database: each writer keeps
//! the head it wrote last and moves it without reading it, so the test makes the other
//! replica append in between (that head is then stale) and both append at once. The chain
//! must stay one: every position once, every MAC linking to the one before.
//! `PDM_TEST_DATABASE=postgres` runs it on PostgreSQL (`PDM_TEST_POSTGRES_URL`).

use std::time::Duration;

use chrono::Utc;
use pdm_access_trail::{
    AccessEntry, Seal, Trail, chain::Verifier, keys::AuditKeys, migration::WithAccessTrail, store,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

/// A service with no tables of its own: only the trail's are migrated.
struct NoTables;

impl MigratorTrait for NoTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

/// The database both replicas open, dropped (PostgreSQL) or deleted (SQLite) at the end.
struct Shared {
    url: String,
    drop: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Shared {
    async fn create() -> Shared {
        let dir = tempfile::tempdir().expect("temp dir");
        if !matches!(
            std::env::var("PDM_TEST_DATABASE").as_deref(),
            Ok("postgres" | "postgresql")
        ) {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("trail.db").display()
            );
            return Shared {
                url,
                drop: None,
                _dir: dir,
            };
        }
        let admin_url = std::env::var("PDM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("pdm_trail_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(admin_url.as_str())
            .await
            .expect("PDM_TEST_DATABASE=postgres but PostgreSQL is not reachable");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        admin.close().await.ok();
        let (base, _) = admin_url.rsplit_once('/').expect("url ends with /<db>");
        Shared {
            url: format!("{base}/{name}"),
            drop: Some((admin_url, name)),
            _dir: dir,
        }
    }

    /// A database with the trail's tables, a connection to it and the chain's seal.
    async fn migrated() -> (Shared, DatabaseConnection, Seal) {
        let shared = Shared::create().await;
        let db = shared.connect().await;
        WithAccessTrail::<NoTables>::up(&db, None)
            .await
            .expect("migrate");
        let seal = Seal::Keyed(AuditKeys::derive(&[7; 32], "identity").chain);
        (shared, db, seal)
    }

    async fn connect(&self) -> DatabaseConnection {
        Database::connect(self.url.as_str()).await.expect("connect")
    }

    async fn remove(self) {
        if let Some((admin_url, name)) = &self.drop {
            let admin = Database::connect(admin_url.as_str()).await.expect("admin");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .expect("drop database");
            admin.close().await.ok();
        }
    }
}

fn entry(n: usize) -> AccessEntry {
    AccessEntry {
        at: Utc::now(),
        caller: "rights".into(),
        method: "/pdm.subject.v1.SubjectDataService/ExportSubject".into(),
        subject_id: format!("subject-{n}"),
        purpose: String::new(),
        trace_id: String::new(),
    }
}

/// Waits until the stored head reaches `seq`.
async fn head_reaches(db: &DatabaseConnection, seq: i64) {
    for _ in 0..500 {
        if store::head(db)
            .await
            .expect("head")
            .is_some_and(|h| h.0 >= seq)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the trail never reached position {seq}");
}

#[tokio::test]
async fn two_replicas_appending_to_one_trail_extend_one_chain() {
    let (shared, db, seal) = Shared::migrated().await;
    let stop = CancellationToken::new();
    let (a, a_writer) = Trail::start(
        shared.connect().await,
        "identity",
        seal.clone(),
        stop.clone(),
    );
    let (b, b_writer) = Trail::start(
        shared.connect().await,
        "identity",
        seal.clone(),
        stop.clone(),
    );

    // Each replica in turn: every append after the first finds the head it knows moved
    // by the other one.
    let mut n = 0;
    for round in 0..6 {
        let trail = if round % 2 == 0 { &a } else { &b };
        for _ in 0..3 {
            n += 1;
            trail.record(entry(n)).await;
        }
        head_reaches(&db, i64::try_from(n).expect("n")).await;
    }
    // Both at once.
    let (first, second) = (a.clone(), b.clone());
    let start = n;
    let both = tokio::join!(
        async move {
            for i in 0..100 {
                first.record(entry(start + 2 * i)).await;
            }
        },
        async move {
            for i in 0..100 {
                second.record(entry(start + 2 * i + 1)).await;
            }
        },
    );
    let () = both.0;
    n += 200;
    stop.cancel();
    a_writer.await.expect("writer a");
    b_writer.await.expect("writer b");

    let head = store::head(&db).await.expect("head");
    assert_eq!(head.as_ref().map(|h| h.0), i64::try_from(n).ok());
    let entries = store::page(&db, 0, 10_000).await.expect("entries");
    assert_eq!(entries.len(), n, "every entry stored once");
    let mut verifier = Verifier::new(seal, Vec::new());
    for e in &entries {
        verifier.push(e);
    }
    let (checked, problems) = verifier.finish(head);
    assert_eq!(checked, u64::try_from(n).expect("n"));
    assert!(problems.is_empty(), "the chain is broken: {problems:?}");
    db.close().await.ok();
    shared.remove().await;
}

#[tokio::test]
async fn appending_after_the_head_moves_it_and_after_a_stale_head_writes_nothing() {
    let (shared, db, seal) = Shared::migrated().await;
    let first = store::append(&db, &seal, &[entry(1)])
        .await
        .expect("append")
        .expect("head");
    let second = store::append_after(&db, &seal, &first, &[entry(2), entry(3)])
        .await
        .expect("append after")
        .expect("moved");
    assert_eq!(second.0, 3);
    assert_eq!(store::head(&db).await.expect("head"), Some(second.clone()));
    // `first` is stale now: nothing is written after it.
    let stale = store::append_after(&db, &seal, &first, &[entry(4)])
        .await
        .expect("append after a stale head");
    assert_eq!(stale, None);
    assert_eq!(store::head(&db).await.expect("head"), Some(second));
    assert_eq!(store::page(&db, 0, 10).await.expect("entries").len(), 3);
    db.close().await.ok();
    shared.remove().await;
}
