//! Password hashing is bounded: 64 concurrent sign-ins against `pdm serve all` keep the
//! whole process under 256 MiB (argon2id takes 19 MiB a hash; unbounded, 64 at once took
//! 6.5 GB), and its memory returns near idle once they stop. RSS read from `/proc`.

use std::time::Duration;

use futures_util::future::join_all;
use pdm_e2e::{Caller, Suite};
use serde_json::json;

const CONCURRENT: usize = 64;
const ROUNDS: usize = 3;
const LIMIT_MIB: f64 = 256.0;
/// Workers give their working memory back after 10 s without work.
const IDLE_RELEASE: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_sign_ins_stay_under_256_mib_and_memory_returns() -> anyhow::Result<()>
{
    let suite = Suite::start().await?;
    let email = format!("memory-{}@example.org", uuid::Uuid::now_v7().simple());
    let password = "a long enough sign-in password";
    suite
        .ok(
            Caller::Client,
            "pdm.identity.v1.IdentityService/CreateAccount",
            json!({"firstName": "Ada", "lastName": "Byron", "email": email,
                "region": "REGION_UK", "password": password}),
        )
        .await?;
    let sign_in = || {
        suite.ok(
            Caller::Client,
            "pdm.identity.v1.IdentityService/Authenticate",
            json!({"email": email, "password": password}),
        )
    };
    sign_in().await?;
    tokio::time::sleep(IDLE_RELEASE).await;
    let idle = suite.pdm.memory_mib("VmRSS")?;

    let mut refused = 0;
    for _ in 0..ROUNDS {
        for answer in join_all((0..CONCURRENT).map(|_| sign_in())).await {
            if let Err(e) = answer {
                println!("refused: {e}");
                refused += 1;
            }
        }
    }
    let peak = suite.pdm.memory_mib("VmHWM")?;
    let busy = suite.pdm.memory_mib("VmRSS")?;
    tokio::time::sleep(IDLE_RELEASE).await;
    let after = suite.pdm.memory_mib("VmRSS")?;
    println!(
        "sign-in memory: idle {idle:.1} MiB, peak {peak:.1} MiB, right after {busy:.1} MiB, \
         after {}s idle {after:.1} MiB; {} sign-ins in {ROUNDS} rounds of {CONCURRENT}, {refused} refused",
        IDLE_RELEASE.as_secs(),
        ROUNDS * CONCURRENT
    );
    anyhow::ensure!(refused == 0, "{refused} sign-ins were refused");
    anyhow::ensure!(
        peak < LIMIT_MIB,
        "peak RSS {peak:.1} MiB, limit {LIMIT_MIB} MiB"
    );
    anyhow::ensure!(
        after < idle + 24.0,
        "RSS did not return near idle: {after:.1} MiB after, {idle:.1} MiB before"
    );
    suite.finish().await
}
