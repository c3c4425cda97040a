//! The checkpoint file of `pdm audit checkpoint`: every service's trail head as the
//! service signed it, kept by the privacy team outside the mesh. JSON, so it can be read
//! and diffed; it holds no personal data (positions, MACs, times, signatures).

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use pdm_access_trail::witness::{hex, unhex};
use pdm_proto::audit::v1::SignedHead;
use pdm_runtime::convert::{from_timestamp, timestamp};
use serde::{Deserialize, Serialize};

/// The format's name and version, first in the file.
const FORMAT: &str = "pdm-audit-checkpoint/1";

/// A checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`FORMAT`].
    pub format: String,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Every service's signed head.
    pub heads: Vec<CheckpointHead>,
}

/// One service's signed head, as in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHead {
    /// The service.
    pub service: String,
    /// Position of the head entry.
    pub seq: i64,
    /// Its MAC, hexadecimal.
    pub mac: String,
    /// When the service signed it.
    pub at: DateTime<Utc>,
    /// The service's signature, hexadecimal.
    pub signature: String,
}

impl Checkpoint {
    /// A checkpoint of `heads`, taken now.
    pub fn new(heads: &[SignedHead]) -> anyhow::Result<Self> {
        let heads =
            heads
                .iter()
                .map(|h| {
                    Ok(CheckpointHead {
                        service: h.service.clone(),
                        seq: h.seq,
                        mac: hex(&h.mac),
                        at: h.at.as_ref().and_then(from_timestamp).with_context(|| {
                            format!("{}: a signed head without a time", h.service)
                        })?,
                        signature: hex(&h.signature),
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            format: FORMAT.to_owned(),
            created_at: Utc::now(),
            heads,
        })
    }

    /// Reads a checkpoint file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the checkpoint {}", path.display()))?;
        let checkpoint: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a checkpoint file", path.display()))?;
        anyhow::ensure!(
            checkpoint.format == FORMAT,
            "{}: format {:?}, expected {FORMAT:?}",
            path.display(),
            checkpoint.format
        );
        Ok(checkpoint)
    }

    /// Writes it to `path`, replacing nothing: a checkpoint is never overwritten.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating the checkpoint {}", path.display()))?;
        std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes())?;
        Ok(())
    }

    /// The signed head of `service`, as the service takes it back.
    pub fn head(&self, service: &str) -> anyhow::Result<Option<SignedHead>> {
        let Some(h) = self.heads.iter().find(|h| h.service == service) else {
            return Ok(None);
        };
        let bytes = |field: &str, text: &str| {
            unhex(text).with_context(|| format!("{service}: {field} is not hexadecimal"))
        };
        Ok(Some(SignedHead {
            service: h.service.clone(),
            seq: h.seq,
            mac: bytes("mac", &h.mac)?,
            at: Some(timestamp(h.at)),
            signature: bytes("signature", &h.signature)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_through_its_file() -> anyhow::Result<()> {
        let signed = SignedHead {
            service: "identity".into(),
            seq: 9,
            mac: vec![1; 32],
            at: Some(timestamp(Utc::now())),
            signature: vec![2; 32],
        };
        let checkpoint = Checkpoint::new(std::slice::from_ref(&signed))?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("checkpoint.json");
        checkpoint.write(&path)?;
        assert!(checkpoint.write(&path).is_err(), "never overwritten");
        let read = Checkpoint::read(&path)?;
        assert_eq!(read, checkpoint);
        assert_eq!(read.head("identity")?, Some(signed));
        assert_eq!(read.head("consent")?, None);
        std::fs::write(&path, "{\"format\": \"other\"}")?;
        assert!(Checkpoint::read(&path).is_err());
        Ok(())
    }
}
