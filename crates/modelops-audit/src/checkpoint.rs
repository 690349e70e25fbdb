//! Checkpoints: signed tree heads in the C2SP `tlog-checkpoint` text, signed
//! as a C2SP signed note, so the transparency-log tools read them:
//!
//! ```text
//! bank.example/audit          ← origin (the key's name)
//! 1234                        ← tree size: events 1..=1234
//! 3q2+7w…=                    ← base64 of the RFC 9162 root
//! time 2026-03-01T09:00:00Z   ← extension line: when it was signed
//!
//! — bank.example/audit Az3g…  ← Ed25519 signature over the lines above
//! ```

use crate::key::{LogSigner, PublicKey};
use crate::tree::Hash;
use crate::{AuditError, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use signed_note::{Note, Verifier, VerifierList};

const TIME_PREFIX: &str = "time ";

/// A checkpoint whose signature was made or checked here.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When it was signed, to the second.
    pub time: DateTime<Utc>,
    /// The signed note, byte for byte what was signed and served.
    pub note: String,
}

impl SignedCheckpoint {
    /// Signs the tree head (`size`, `root`) at `time`.
    pub fn sign(signer: &LogSigner, size: u64, root: Hash, time: DateTime<Utc>) -> Result<Self> {
        let time = DateTime::from_timestamp(time.timestamp(), 0).unwrap_or(time);
        let extension = format!("{TIME_PREFIX}{}\n", time.to_rfc3339_opts(SecondsFormat::Secs, true));
        let body = tlog_tiles::Checkpoint::new(signer.origin(), size, root, &extension)
            .map_err(|e| AuditError::malformed("checkpoint", e))?
            .to_bytes();
        let mut note = Note::new(&body, &[]).map_err(|e| AuditError::malformed("checkpoint", e))?;
        note.add_sigs(&[signer.signer()]).map_err(|e| AuditError::BadSignature(format!("cannot sign the checkpoint: {e}")))?;
        let note = String::from_utf8(note.to_bytes()).map_err(|e| AuditError::malformed("checkpoint", e))?;
        Ok(Self { origin: signer.origin().to_string(), size, root, time, note })
    }

    /// Parses a signed note and checks its signature with `key`: a note not
    /// signed by `key` (forged, altered, or another log's) is refused.
    pub fn open(note: &str, key: &PublicKey) -> Result<Self> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| AuditError::malformed("checkpoint", format!("not a signed note: {e}")))?;
        let verifiers = VerifierList::new(vec![Box::new(key.verifier().clone()) as Box<dyn Verifier>]);
        parsed.verify(&verifiers).map_err(|e| {
            AuditError::BadSignature(format!(
                "the checkpoint's signature does not verify with key `{}`: {e}",
                key.text()
            ))
        })?;
        let checkpoint = parse_body(parsed.text())?;
        if checkpoint.origin != key.origin() {
            return Err(AuditError::Mismatch(format!(
                "the checkpoint is for log `{}`, the key for log `{}`",
                checkpoint.origin,
                key.origin()
            )));
        }
        Ok(Self { note: note.to_string(), ..checkpoint })
    }

    /// The root as the note writes it (base64).
    pub fn root_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.root.0)
    }
}

fn parse_body(text: &[u8]) -> Result<SignedCheckpoint> {
    let body = tlog_tiles::Checkpoint::from_bytes(text).map_err(|e| AuditError::malformed("checkpoint", e))?;
    let time = body
        .extension()
        .lines()
        .find_map(|line| line.strip_prefix(TIME_PREFIX))
        .ok_or_else(|| AuditError::malformed("checkpoint", "no `time` line: it was not signed by modelops"))?;
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|e| AuditError::malformed("checkpoint", format!("time `{time}`: {e}")))?
        .with_timezone(&Utc);
    Ok(SignedCheckpoint { origin: body.origin().to_string(), size: body.size(), root: *body.hash(), time, note: String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let (signer, _) = LogSigner::generate("bank.example/audit").unwrap();
        let root = tlog_tiles::record_hash(b"x");
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let cp = SignedCheckpoint::sign(&signer, 1234, root, at).unwrap();
        assert!(cp.note.starts_with("bank.example/audit\n1234\n"), "{}", cp.note);
        assert!(cp.note.contains("\ntime 2026-03-01T09:00:00Z\n\n— bank.example/audit "), "{}", cp.note);
        let opened = SignedCheckpoint::open(&cp.note, signer.public_key()).unwrap();
        assert_eq!(opened, cp);

        let (other, _) = LogSigner::generate("bank.example/audit").unwrap();
        let err = SignedCheckpoint::open(&cp.note, other.public_key()).unwrap_err();
        assert!(matches!(err, AuditError::BadSignature(_)), "{err}");

        // One digit of the size changed: the signature no longer covers it.
        let forged = cp.note.replacen("1234", "1235", 1);
        assert!(matches!(SignedCheckpoint::open(&forged, signer.public_key()), Err(AuditError::BadSignature(_))));
        assert!(SignedCheckpoint::open("garbage", signer.public_key()).is_err());
    }
}
