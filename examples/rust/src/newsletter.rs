//! A newsletter sender: before each message it asks the consent gate whether a
//! promotional email may go to the recipient ("You can opt out of receiving promotional
//! messages at any time"), sends only what is allowed, and reports what it skipped and
//! why.
//!
//! Recipients are subject ids. What is printed or reported names a message by its number
//! in the run, never by its recipient: a subject id is personal data too.

use std::{collections::BTreeMap, collections::HashSet, fmt, path::Path};

use pdm_client::{
    ConsentGate, Verdict,
    types::{Channel, MessageKind},
};

use crate::reason_label;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The consent service said no (opted out, no consent, unknown subject …).
    Refused(pdm_client::types::Reason),
    /// No decision could be had, so the gate denied (held back: send it in a later run).
    FailedClosed {
        /// Why (no personal data).
        why: String,
    },
    /// The recipient appeared earlier in the list: one newsletter per person.
    Duplicate,
}

impl Skip {
    /// A short label to count skips by (`opted_out`, `failed_closed`, `duplicate`).
    pub fn label(&self) -> String {
        match self {
            Self::Refused(reason) => reason_label(*reason),
            Self::FailedClosed { .. } => "failed_closed".to_owned(),
            Self::Duplicate => "duplicate".to_owned(),
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handed to the mailer.
    Sent,
    /// Not sent.
    Skipped(Skip),
}

/// One message of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its number in the run (1-based, in the order of the recipients).
    pub number: usize,
    /// What happened to it.
    pub outcome: Outcome,
}

/// What a run did, message by message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every message, in order.
    pub messages: Vec<Message>,
}

impl Report {
    /// Messages sent.
    pub fn sent(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.outcome == Outcome::Sent)
            .count()
    }

    /// Messages skipped, counted by [`Skip::label`].
    pub fn skipped(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for message in &self.messages {
            if let Outcome::Skipped(skip) = &message.outcome {
                *counts.entry(skip.label()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Messages held back because consent could not be checked: a run with any is worth
    /// repeating for them.
    pub fn failed_closed(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| matches!(m.outcome, Outcome::Skipped(Skip::FailedClosed { .. })))
            .count()
    }
}

impl fmt::Display for Report {
    /// `sent 1, skipped 2 (no_consent: 1, opted_out: 1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skipped = self.skipped();
        write!(
            f,
            "sent {}, skipped {}",
            self.sent(),
            skipped.values().sum::<usize>()
        )?;
        if !skipped.is_empty() {
            let parts: Vec<String> = skipped.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Sends the newsletter to `recipients` (subject ids): each message goes to `deliver`
/// (with its number and recipient) only when the gate allows a promotional email to that
/// subject.
///
/// Messages are asked about one after the other, which keeps the example plain; a large
/// list would ask about several at once (the gate shares its cache and connections between
/// concurrent callers).
pub async fn send(
    gate: &ConsentGate,
    recipients: &[String],
    mut deliver: impl FnMut(usize, &str),
) -> Report {
    let mut seen = HashSet::new();
    let mut report = Report::default();
    for (index, subject) in recipients.iter().enumerate() {
        let number = index + 1;
        let outcome = if !seen.insert(subject.as_str()) {
            Outcome::Skipped(Skip::Duplicate)
        } else {
            match gate
                .can_contact(subject, Channel::Email, MessageKind::Promotional)
                .await
            {
                Verdict::Decided(decision) if decision.allowed => {
                    deliver(number, subject);
                    Outcome::Sent
                }
                Verdict::Decided(decision) => Outcome::Skipped(Skip::Refused(decision.reason)),
                Verdict::FailedClosed { why } => Outcome::Skipped(Skip::FailedClosed { why }),
            }
        };
        report.messages.push(Message { number, outcome });
    }
    report
}

/// The command line was not understood, or the recipients file could not be read.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// How to call the `newsletter` binary.
pub const USAGE: &str = "usage: newsletter --file <recipients> | newsletter <subject-id>...
  <recipients>: one subject id a line; blank lines and lines starting with # are ignored";

/// The recipients named on the command line (without the program name): `--file <path>`
/// or the subject ids themselves.
pub fn recipients_from_args(
    args: impl IntoIterator<Item = String>,
) -> Result<Vec<String>, UsageError> {
    let args: Vec<String> = args.into_iter().collect();
    let recipients = match args.as_slice() {
        [] => return Err(UsageError(USAGE.to_owned())),
        [flag, path] if flag == "--file" || flag == "-f" => {
            let text = std::fs::read_to_string(Path::new(path))
                .map_err(|e| UsageError(format!("cannot read the recipients file {path}: {e}")))?;
            parse_recipients(&text)
        }
        [flag, ..] if flag.starts_with('-') => return Err(UsageError(USAGE.to_owned())),
        ids => ids.iter().map(|id| id.trim().to_owned()).collect(),
    };
    if recipients.is_empty() {
        return Err(UsageError("no recipients".to_owned()));
    }
    Ok(recipients)
}

/// Subject ids, one a line; blank lines and `#` comments are ignored.
pub fn parse_recipients(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use pdm_client::types::Reason;

    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn recipients_come_from_a_file_or_the_arguments() -> Result<(), UsageError> {
        assert_eq!(
            parse_recipients("# june\n a \n\nb\n#c\n"),
            ["a", "b"].map(String::from)
        );
        assert_eq!(
            recipients_from_args(args(&["a", "b"]))?,
            ["a", "b"].map(String::from)
        );
        let dir = std::env::temp_dir().join(format!("pdm-newsletter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| UsageError(e.to_string()))?;
        let file = dir.join("recipients.txt");
        std::fs::write(&file, "x\n# y\nz\n").map_err(|e| UsageError(e.to_string()))?;
        let path = file.display().to_string();
        assert_eq!(
            recipients_from_args(args(&["--file", &path]))?,
            ["x", "z"].map(String::from)
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn a_bad_command_line_is_a_usage_error() {
        for bad in [
            &[][..],
            &["--file"],
            &["--verbose", "a"],
            &["-f", "/nonexistent/r"],
        ] {
            assert!(recipients_from_args(args(bad)).is_err(), "{bad:?}");
        }
        assert!(recipients_from_args(args(&["--file", "/dev/null"])).is_err());
    }

    #[test]
    fn the_report_counts_skips_by_reason() {
        let report = Report {
            messages: [
                Outcome::Sent,
                Outcome::Skipped(Skip::Refused(Reason::OptedOut)),
                Outcome::Skipped(Skip::Refused(Reason::NoConsent)),
                Outcome::Skipped(Skip::Refused(Reason::OptedOut)),
                Outcome::Skipped(Skip::FailedClosed {
                    why: "consent unreachable".to_owned(),
                }),
                Outcome::Skipped(Skip::Duplicate),
            ]
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| Message {
                number: i + 1,
                outcome,
            })
            .collect(),
        };
        assert_eq!(report.sent(), 1);
        assert_eq!(report.failed_closed(), 1);
        assert_eq!(
            report.to_string(),
            "sent 1, skipped 5 (duplicate: 1, failed_closed: 1, no_consent: 1, opted_out: 2)"
        );
    }
}
