//! `newsletter`: sends the newsletter to the subjects named on the command line or in a
//! file, asking the consent gate before each message (see `pdm_examples::newsletter`).
//!
//! The pdm client is configured from the environment (`PDM_ENDPOINT_CONSENT`,
//! `PDM_CERT_DIR` and `PDM_CLIENT_NAME`, …: clients/rust/README.md). Exit codes: 0 when
//! every message was decided, 64 for a bad command line or configuration, 75 when some
//! messages were held back because consent could not be checked (run again later).

use std::process::ExitCode;

use pdm_client::{ConsentGate, GateOptions, PdmClient};
use pdm_examples::newsletter::{self, Outcome, Skip};

/// EX_USAGE / EX_CONFIG-like: nothing was sent.
const BAD_SETUP: u8 = 64;
/// EX_TEMPFAIL: some messages were held back.
const HELD_BACK: u8 = 75;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let recipients = match newsletter::recipients_from_args(std::env::args().skip(1)) {
        Ok(recipients) => recipients,
        Err(err) => {
            eprintln!("newsletter: {err}");
            return ExitCode::from(BAD_SETUP);
        }
    };
    let consent = match PdmClient::from_env().and_then(|pdm| pdm.consent()) {
        Ok(consent) => consent,
        Err(err) => {
            eprintln!("newsletter: {err}");
            return ExitCode::from(BAD_SETUP);
        }
    };
    let gate = ConsentGate::start(consent, GateOptions::default());
    // The "mailer": the message number only, never the recipient.
    let report = newsletter::send(&gate, &recipients, |number, _subject| {
        println!("message {number}: sent");
    })
    .await;
    for message in &report.messages {
        match &message.outcome {
            Outcome::Sent => {}
            Outcome::Skipped(Skip::FailedClosed { why }) => {
                println!("message {}: held back ({why})", message.number);
            }
            Outcome::Skipped(skip) => {
                println!("message {}: skipped ({})", message.number, skip.label());
            }
        }
    }
    println!("{report}");
    if report.failed_closed() > 0 {
        return ExitCode::from(HELD_BACK);
    }
    ExitCode::SUCCESS
}
