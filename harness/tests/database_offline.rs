//! `Database::take_offline`: the backend's database refuses connections (open ones are
//! terminated) until the guard is restored or dropped — also when the code holding it panics —
//! and only that database: the server and its other databases keep answering.

use std::sync::Arc;

use harness::internal::{BinSpec, PgServer, ServerSpec};
use sqlx::{Connection, PgConnection};

async fn server() -> Arc<PgServer> {
    PgServer::shared(&ServerSpec::Local { bins: BinSpec::default(), listen_extra: None }).await.expect("a local Postgres (initdb/postgres binaries)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_database_refuses_connections_and_comes_back() {
    let server = server().await;
    let db = server.create_database(None).await.expect("a database");
    let other = server.create_database(None).await.expect("another database");
    let mut open = PgConnection::connect(&db.url()).await.expect("connects before");

    let offline = db.take_offline().await.expect("taken offline");
    let refused = PgConnection::connect(&db.url()).await.expect_err("refused while offline");
    assert!(refused.to_string().contains("not currently accepting connections"), "{refused}");
    assert!(sqlx::query("SELECT 1").execute(&mut open).await.is_err(), "the open connection was terminated");
    PgConnection::connect(&other.url()).await.expect("the other database still answers");

    offline.restore().await.expect("restored");
    PgConnection::connect(&db.url()).await.expect("connects after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_comes_back_when_the_holder_panics() {
    let server = server().await;
    let db = Arc::new(server.create_database(None).await.expect("a database"));
    let inner = Arc::clone(&db);
    let panicked = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async move {
        let _offline = inner.take_offline().await.expect("taken offline");
        panic!("a scenario panics while the database is offline");
    }))
    .await;
    assert!(panicked.is_err(), "the holder panicked");
    PgConnection::connect(&db.url()).await.expect("the guard's drop restored the database");
}
