//! The local mailbox file, the default message sink (`make run`, `pdm serve all`): JSON
//! lines, mode 0600, appended as messages are sent. No line holds an address or a body in
//! clear: each carries its message sealed under a key of its own, kept in the rights key
//! store (apart from the data) until the subject is erased. Destroying that key is
//! crypto-shredding: every copy of the file, backups included, stays unreadable for that
//! message. `pdm rights mailbox` reads what can still be opened.

use std::{
    io::{BufRead as _, Write as _},
    path::Path,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use pdm_crypto::{DataKey, Keyring};
use serde::{Deserialize, Serialize};

use crate::{
    error::Result,
    store::{KeyOf, Store},
};

/// Field name bound into each sealed message.
const F_MESSAGE: &str = "mailbox.message";

/// What a message says, as sealed in a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// One line of the file: the message's ids in clear, the rest sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    message_id: String,
    request_id: String,
    topic: String,
    /// Base64 of the sealed [`Letter`]; absent only in lines of versions before sealing.
    #[serde(default)]
    sealed: Option<String>,
}

/// A message of the file, opened when its key still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Message id.
    pub message_id: String,
    /// Request id.
    pub request_id: String,
    /// Topic ("received", "completed", "extended").
    pub topic: String,
    /// The message, or `None` once its key is gone (the subject was erased).
    pub letter: Option<Letter>,
}

/// The line for a message, sealed under its key in the key store. Without one (a message
/// queued before mailbox keys existed, or its subject erased meanwhile) it is sealed
/// under a key nobody keeps (`keyring` makes one and it is dropped): the file records
/// that it was sent, and nothing more.
pub fn line(
    keyring: &Keyring,
    message_id: &str,
    request_id: &str,
    topic: &str,
    key: Option<&DataKey>,
    letter: &Letter,
) -> Result<String> {
    let throwaway;
    let key: &DataKey = match key {
        Some(key) => key,
        None => {
            throwaway = keyring.generate(&format!("mailbox:{message_id}"))?.0;
            &throwaway
        }
    };
    let plain =
        serde_json::to_vec(letter).map_err(|_| crate::error::RightsError::Internal("letter"))?;
    let sealed = key.seal(F_MESSAGE, &plain)?;
    serde_json::to_string(&Line {
        message_id: message_id.to_owned(),
        request_id: request_id.to_owned(),
        topic: topic.to_owned(),
        sealed: Some(STANDARD.encode(sealed)),
    })
    .map_err(|_| crate::error::RightsError::Internal("mailbox line"))
}

/// Appends a line, creating the file (0600) and its directory as needed.
pub fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = private(path, true)?;
    writeln!(file, "{line}")
}

/// Opens a file only its owner can read, for appending or replacing.
fn private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Every message of the file, each opened with its key while it has one.
pub async fn read(store: &Store, path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut entries = Vec::new();
    for raw in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(line) = serde_json::from_str::<Line>(raw) else {
            continue;
        };
        let letter = match &line.sealed {
            Some(sealed) => store
                .find_key(KeyOf::Message(&line.message_id))
                .await?
                .and_then(|key| open(&key, sealed)),
            None => None,
        };
        entries.push(Entry {
            message_id: line.message_id,
            request_id: line.request_id,
            topic: line.topic,
            letter,
        });
    }
    Ok(entries)
}

/// The mailbox of a configuration (`file`, else the one the rights service writes), read
/// with the rights database and key store the settings name: for a developer's
/// `pdm rights mailbox`.
pub async fn read_configured(
    settings: &pdm_runtime::Settings,
    file: Option<&Path>,
) -> anyhow::Result<(std::path::PathBuf, Vec<Entry>)> {
    let rights: crate::settings::RightsSettings = settings.checked()?;
    let path = file.map_or_else(
        || rights.mailbox_file(&settings.data_dir),
        Path::to_path_buf,
    );
    let entries = read(&Store::connect(settings).await?, &path).await?;
    Ok((path, entries))
}

fn open(key: &DataKey, sealed: &str) -> Option<Letter> {
    let plain = key.open(F_MESSAGE, &STANDARD.decode(sealed).ok()?).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Removes the lines earlier versions wrote with the address in clear (the file kept
/// them forever, erased subjects' included); returns how many went. Sealed lines stay.
pub fn scrub_plaintext(path: &Path) -> std::io::Result<usize> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut kept = Vec::new();
    let mut removed = 0;
    for raw in std::io::BufReader::new(file).lines() {
        let raw = raw?;
        if is_sealed(&raw) {
            kept.push(raw);
        } else {
            removed += 1;
        }
    }
    if removed > 0 {
        // Written aside then renamed, so a crash leaves the old file or the new one.
        let aside = path.with_extension("scrubbed");
        let mut file = private(&aside, false)?;
        for line in &kept {
            writeln!(file, "{line}")?;
        }
        file.sync_all()?;
        std::fs::rename(&aside, path)?;
    }
    Ok(removed)
}

/// Whether a line is one this version writes (no clear address or body).
fn is_sealed(raw: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(raw).is_ok_and(|v| {
        v.get("sealed").is_some_and(serde_json::Value::is_string)
            && v.get("to").is_none()
            && v.get("body").is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new(&[7; 32])
    }

    fn letter() -> Letter {
        Letter {
            to: "ada@example.com".into(),
            subject: "Your privacy request (completed)".into(),
            body: "Done.\n".into(),
        }
    }

    #[test]
    fn a_line_holds_neither_address_nor_body_and_opens_with_its_key() {
        let keyring = keyring();
        let (key, _) = keyring.generate("mailbox:m1").expect("key");
        let text = line(&keyring, "m1", "r1", "completed", Some(&key), &letter()).expect("line");
        assert!(
            !text.contains("ada@example.com") && !text.contains("Done."),
            "{text}"
        );
        assert!(is_sealed(&text));
        let parsed: Line = serde_json::from_str(&text).expect("json");
        let sealed = parsed.sealed.expect("sealed");
        assert_eq!(open(&key, &sealed), Some(letter()));
        // Another message's key opens nothing.
        let (other, _) = keyring.generate("mailbox:m2").expect("key");
        assert_eq!(open(&other, &sealed), None);
    }

    #[test]
    fn plaintext_lines_of_earlier_versions_are_scrubbed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("messages.jsonl");
        let keyring = keyring();
        let sealed = line(&keyring, "m1", "r1", "received", None, &letter()).expect("line");
        let old = r#"{"message_id":"m0","request_id":"r0","to":"ada@example.com","subject":"s","body":"b"}"#;
        for l in [old, sealed.as_str()] {
            append(&path, l).expect("append");
        }
        assert_eq!(scrub_plaintext(&path).expect("scrub"), 1);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("ada@example.com"));
        assert_eq!(text.lines().collect::<Vec<_>>(), [sealed.as_str()]);
        assert_eq!(scrub_plaintext(&path).expect("again"), 0);
        assert_eq!(
            scrub_plaintext(&dir.path().join("absent")).expect("absent"),
            0
        );
    }
}
