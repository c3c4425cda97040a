//! Faults injected into a real database, to prove that what must be stored together is
//! stored together or not at all: a table made to refuse inserts fails the transaction
//! that writes to it, as a stop in the middle of it would.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};

/// Makes every insert into `table` (a trusted identifier) fail, until [`allow_inserts`].
pub async fn refuse_inserts(db: &DatabaseConnection, table: &str) -> anyhow::Result<()> {
    let trigger = trigger(table);
    let statements = match db.get_database_backend() {
        DatabaseBackend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION pdm_test_refuse() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION pdm_test_refuse()"
            ),
        ],
        _ => vec![format!(
            "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
    };
    for sql in statements {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// Undoes [`refuse_inserts`].
pub async fn allow_inserts(db: &DatabaseConnection, table: &str) -> anyhow::Result<()> {
    let trigger = trigger(table);
    let sql = match db.get_database_backend() {
        DatabaseBackend::Postgres => format!("DROP TRIGGER {trigger} ON {table}"),
        _ => format!("DROP TRIGGER {trigger}"),
    };
    db.execute_unprepared(&sql).await?;
    Ok(())
}

fn trigger(table: &str) -> String {
    format!("pdm_test_refuse_{table}")
}
