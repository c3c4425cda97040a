//! `stabilise_plans` leaves a connection keeping its query plans whatever is bound (so a bound
//! `LIMIT ?` no longer expires the cached statement on every run).

use sea_orm::sqlx::{
    Connection,
    sqlite::{SqliteConnectOptions, SqliteConnection},
};

#[tokio::test]
async fn a_tuned_connection_keeps_its_plans_and_an_untuned_one_does_not() {
    let options = SqliteConnectOptions::new().in_memory(true);
    let mut plain = SqliteConnection::connect_with(&options)
        .await
        .expect("open");
    assert!(
        !pdm_sqlite_conn::plans_are_stable(&mut plain)
            .await
            .expect("read the setting"),
        "SQLite's default re-plans on bindings: the check would prove nothing"
    );
    let mut tuned = SqliteConnection::connect_with(&options)
        .await
        .expect("open");
    pdm_sqlite_conn::stabilise_plans(&mut tuned)
        .await
        .expect("stabilise the plans");
    assert!(
        pdm_sqlite_conn::plans_are_stable(&mut tuned)
            .await
            .expect("read the setting")
    );
}
