//! `pdm_assessments_review_overdue{kind}` (one test in this binary: the gauge is
//! process-wide, and another mesh in the same process would set it too): the DPIAs past
//! their review date and the transfers service's TIAs due for review, read at scrape.

mod assessments_support;

use assessments_support::{admin, details, mechanism, mesh, recipient, record};
use chrono::Duration;
use pdm_runtime::{Clock, ManualClock};
use pdm_testkit::start_time;

#[tokio::test]
async fn the_gauge_counts_the_overdue_dpias_and_tias_at_each_scrape() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = admin(&mesh)?;
    let t0 = clock.now();
    record(&mut client, details(t0, Duration::days(10))).await?;
    record(&mut client, details(t0, Duration::days(12))).await?;
    record(&mut client, details(t0, Duration::days(100))).await?;
    let to = recipient(&mesh).await?;
    mechanism(&mesh, &to, t0 + Duration::days(20), "TIA-IN-1").await?;
    mechanism(&mesh, &to, t0 + Duration::days(200), "TIA-IN-2").await?;

    let metrics = pdm_metrics::render().await;
    for line in [
        "pdm_assessments_review_overdue{kind=\"dpia\"} 0",
        "pdm_assessments_review_overdue{kind=\"tia\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }

    clock.advance(Duration::days(30));
    let metrics = pdm_metrics::render().await;
    for line in [
        "pdm_assessments_review_overdue{kind=\"dpia\"} 2",
        "pdm_assessments_review_overdue{kind=\"tia\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    Ok(())
}
