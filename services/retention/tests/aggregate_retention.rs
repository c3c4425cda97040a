//! Aggregates have a retention rule too (issue 16; policy, "How long we keep your
//! information": "We may also retain aggregate information beyond this time", not without
//! limit): a purge run deletes telemetry's buckets of days past `telemetry.aggregate`,
//! published or not, and keeps the later ones; a dry run deletes nothing.

mod support;

use chrono::Months;
use pdm_runtime::{
    ManualClock,
    sea_orm::{ConnectionTrait, DatabaseConnection, Statement},
};
use pdm_testkit::start_time;
use support::{count, mesh, run_purge};

const AGGREGATE: &str = "telemetry.aggregate";

async fn aggregate_days(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT day FROM aggregates ORDER BY day".to_owned(),
        ))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "day").ok())
        .collect())
}

#[tokio::test]
async fn buckets_past_ten_years_go_and_later_ones_stay() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    // Published buckets (k people) of the first day and of a day nine years later.
    let telemetry = mesh.connect_db("telemetry").await?;
    let later = start_time() + Months::new(12 * 9);
    for day in [start_time(), later] {
        telemetry
            .execute_unprepared(&format!(
                "INSERT INTO aggregates (day, dimension, value, count, people) \
                 VALUES ('{}', 'feature', 'export', 40, 5)",
                day.format("%Y-%m-%d")
            ))
            .await?;
    }

    // Ten years and a day on: the first day's bucket is past its period.
    clock.set(start_time() + Months::new(12 * 10) + chrono::Duration::days(1));
    let mut retention = mesh.retention();
    let (_, dry) = run_purge(&mut retention, true).await?;
    assert_eq!(count(&dry, "telemetry", AGGREGATE), (1, 0, Vec::new()));
    assert_eq!(
        aggregate_days(&telemetry).await?.len(),
        2,
        "a dry run deletes nothing"
    );

    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(count(&run, "telemetry", AGGREGATE), (1, 0, Vec::new()));
    assert_eq!(
        aggregate_days(&telemetry).await?,
        [later.format("%Y-%m-%d").to_string()]
    );
    Ok(())
}
