//! Fresh databases for the segment tests: a SQLite file always, a PostgreSQL database
//! (`mc_seg_<random>`) when `TEST_DATABASE_URL` names a server.

use mailcast::store::{Db, Store};

pub struct SegDb {
    pub store: Store,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl SegDb {
    pub async fn sqlite() -> SegDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("segments.db").display().to_string();
        let store = Store::open(&url).await.expect("open sqlite store");
        SegDb {
            store,
            label: "sqlite",
            _dir: Some(dir),
            postgres: None,
        }
    }

    pub async fn postgres() -> Option<SegDb> {
        let admin_url = super::postgres_admin_url()?;
        let name = format!("mc_seg_{:016x}", rand::random::<u64>());
        admin(&admin_url, &format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let store = Store::open(url.as_str())
            .await
            .expect("open postgres store");
        Some(SegDb {
            store,
            label: "postgres",
            _dir: None,
            postgres: Some((admin_url, name)),
        })
    }

    /// SQLite, and PostgreSQL when configured.
    pub async fn all() -> Vec<SegDb> {
        let mut dbs = vec![SegDb::sqlite().await];
        dbs.extend(SegDb::postgres().await);
        dbs
    }

    pub async fn drop_database(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = &self.postgres {
            admin(
                admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

async fn admin(url: &str, sql: &str) {
    let store = Store::connect(url)
        .await
        .expect("connect TEST_DATABASE_URL");
    if let Db::Postgres(pool) = store.db() {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    store.close().await;
}

/// A row of `tracking_events`: recipient, kind, human, occurred_at.
pub type TouchRow = (i64, &'static str, bool, i64);

/// Records opens and clicks in one transaction (there is no store API for the HTTP
/// side's event writer that tests could share).
pub async fn insert_touches(store: &Store, rows: &[TouchRow]) {
    let sql = "INSERT INTO tracking_events (kind, campaign_id, recipient_id, occurred_at, verdict)
               VALUES ($1, 1, $2, $3, $4)";
    macro_rules! insert_all {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await.expect("begin");
            for (recipient, kind, human, at) in rows {
                let verdict = if *human { "human" } else { "machine" };
                sqlx::query(sql)
                    .bind(*kind)
                    .bind(*recipient)
                    .bind(*at)
                    .bind(verdict)
                    .execute(&mut *tx)
                    .await
                    .expect("insert tracking event");
            }
            tx.commit().await.expect("commit");
        }};
    }
    match store.db() {
        Db::Sqlite(pool) => insert_all!(pool),
        Db::Postgres(pool) => insert_all!(pool),
    }
}
