//! Shared test helpers: real databases (a SQLite file always; PostgreSQL when
//! `TEST_DATABASE_URL` is set) and a real SMTP server.
#![allow(dead_code)]

pub mod automation;
pub mod bounce_mail;
pub mod bounce_receiver;
pub mod browser;
pub mod campaign;
pub mod dashboard;
pub mod dkimpy;
pub mod dovecot;
pub mod http;
pub mod postfix;
pub mod scripted_smtp;
pub mod segment_data;
pub mod segment_db;
pub mod segment_fixtures;
pub mod segment_gen;
pub mod smtp;
pub mod webhooks;

use std::future::Future;
use std::time::{Duration, Instant};

use mailcast::domain::EmailAddress;
use mailcast::store::{NewRecipient, Store};

/// A store on a fresh database, and what removes it afterwards.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
    Done,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("mailcast.db").display().to_string();
        let store = Store::open(&url).await.expect("open sqlite store");
        TestDb {
            store,
            url,
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    /// A fresh PostgreSQL database, when `TEST_DATABASE_URL` names a server.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = postgres_admin_url()?;
        let name = format!("mailcast_test_{:016x}", rand::random::<u64>());
        let admin = Store::connect(&admin_url)
            .await
            .expect("connect TEST_DATABASE_URL");
        admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await;
        admin.close().await;
        let url = replace_database(&admin_url, &name);
        let store = Store::open(&url).await.expect("open postgres store");
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// Closes the store and drops a PostgreSQL database now. Without this, dropping the
    /// `TestDb` removes the database too (also when the test panicked).
    pub async fn drop_database(mut self) {
        self.store.close().await;
        if let Cleanup::Postgres { admin_url, name } =
            std::mem::replace(&mut self.cleanup, Cleanup::Done)
        {
            drop_postgres(&admin_url, &name).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } =
            std::mem::replace(&mut self.cleanup, Cleanup::Done)
        {
            // Drop cannot await, and may run inside the test's runtime: a thread of its own
            // with a runtime of its own. FORCE ends the connections the test left open.
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database")
                    .block_on(drop_postgres(&admin_url, &name))
            })
            .join();
            if dropped.is_err() && !std::thread::panicking() {
                panic!("cannot drop the test database");
            }
        }
    }
}

async fn drop_postgres(admin_url: &str, name: &str) {
    let admin = Store::connect(admin_url)
        .await
        .expect("connect TEST_DATABASE_URL");
    admin
        .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    admin.close().await;
}

/// Polls `check` every 20 ms until it answers `Ok`, and returns that. Each `Err` says
/// what the state is now; after `limit` the test fails with the last one.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) => assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; still {state}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `TEST_DATABASE_URL`, or None to skip PostgreSQL; under CI
/// (`MAILCAST_TEST_CI`) its absence fails the test instead.
pub fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok();
    assert!(
        url.is_some() || std::env::var_os("MAILCAST_TEST_CI").is_none(),
        "MAILCAST_TEST_CI is set but TEST_DATABASE_URL is not"
    );
    url
}

fn replace_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// Runs `test` against SQLite, then PostgreSQL when configured. The label names the
/// engine in assertion messages.
pub async fn for_each_engine<F, Fut>(test: F)
where
    F: Fn(Store, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = TestDb::sqlite().await;
    test(sqlite.store.clone(), "sqlite").await;
    sqlite.drop_database().await;
    if let Some(postgres) = TestDb::postgres().await {
        test(postgres.store.clone(), "postgres").await;
        postgres.drop_database().await;
    } else {
        eprintln!("TEST_DATABASE_URL unset: PostgreSQL half of this test skipped");
    }
}

pub fn recipient(email: &str, first_name: &str, topics: &[&str]) -> NewRecipient {
    NewRecipient {
        email: EmailAddress::parse(email).expect("valid test address"),
        first_name: Some(first_name.to_string()),
        last_name: None,
        country: None,
        city: None,
        locale: None,
        timezone: None,
        attributes: serde_json::Map::new(),
        created_at: None,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        consent_source: "test".into(),
    }
}
