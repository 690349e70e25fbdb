//! The log's Ed25519 key, in the text forms of C2SP signed-note (Go's
//! `sumdb/note`): the private key `PRIVATE+KEY+<name>+<id>+<base64>` and the
//! verifier key `<name>+<id>+<base64>`, where `<name>` is the log's origin
//! and `<id>` the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public
//! key). The private key lives in a file outside the database (created on
//! first start, mode 0600) or in an environment variable; the verifier key
//! is public.

use sha2::Digest;
use crate::{AuditError, Result};
use signed_note::{Signer, StandardSigner, StandardVerifier, Verifier};
use std::path::Path;

/// The origin a log gets when its key is created without one.
pub const DEFAULT_ORIGIN: &str = "modelops.local/audit";

/// Signs the log's checkpoints.
#[derive(Clone)]
pub struct LogSigner {
    signer: StandardSigner,
    public: PublicKey,
    /// SHA-256 of the private key's text: what [`LogSigner::derive_secret`]
    /// derives from.
    seed: [u8; 32],
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner").field("public", &self.public.text).finish_non_exhaustive()
    }
}

impl LogSigner {
    /// A new random key named `origin`, with its private text.
    pub fn generate(origin: &str) -> Result<(Self, String)> {
        check_origin(origin)?;
        let (private, _) = signed_note::generate_key(&mut rand_core::OsRng, origin);
        Ok((Self::from_private(&private)?, private))
    }

    /// A key from its private text (`PRIVATE+KEY+…`).
    pub fn from_private(text: &str) -> Result<Self> {
        let text = text.trim();
        let signer = StandardSigner::new(text)
            .map_err(|e| AuditError::malformed("the audit signing key", format!("{e} (expected `PRIVATE+KEY+<origin>+<id>+<base64>`)")))?;
        let public = PublicKey::from_private(text)?;
        let seed = sha2::Sha256::digest(text.as_bytes()).into();
        Ok(Self { signer, public, seed })
    }

    /// Loads the key at `path`, or creates one named `origin` there when no
    /// file exists (readable by the owner only). `origin`, when given, must
    /// be the existing key's name: a log keeps its origin.
    pub fn load_or_create(path: &Path, origin: Option<&str>) -> Result<(Self, bool)> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let signer = Self::from_private(&text)
                    .map_err(|e| AuditError::Io(format!("the audit signing key `{}`: {e}", path.display())))?;
                if let Some(origin) = origin {
                    if origin != signer.origin() {
                        return Err(AuditError::Mismatch(format!(
                            "the audit signing key `{}` is the key of origin `{}`, not `{origin}`: a log keeps its origin (remove the setting, or point at another key file)",
                            path.display(),
                            signer.origin()
                        )));
                    }
                }
                Ok((signer, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (signer, private) = Self::generate(origin.unwrap_or(DEFAULT_ORIGIN))?;
                write_private(path, &private)?;
                Ok((signer, true))
            }
            Err(e) => Err(AuditError::Io(format!("cannot read the audit signing key `{}`: {e}", path.display()))),
        }
    }

    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// A secret for another use (`label` names it), the same wherever this
    /// key is: what replicas sharing the key share without more
    /// configuration. HMAC-SHA-256 keyed with the private key's hash, so no
    /// derived secret reveals the key or another label's secret.
    pub fn derive_secret(&self, label: &str) -> [u8; 32] {
        // HMAC pads a short key with zeros to the block: the same as keying with the 32 bytes.
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&self.seed);
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new(&key.into());
        hmac::Mac::update(&mut mac, label.as_bytes());
        hmac::Mac::finalize(mac).into_bytes().into()
    }

    pub(crate) fn signer(&self) -> &StandardSigner {
        &self.signer
    }
}

/// Writes a new key file, refusing to replace one, readable by the owner only.
fn write_private(path: &Path, private: &str) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| AuditError::Io(format!("cannot create the audit signing key `{}`: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(format!("{private}\n").as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

fn check_origin(origin: &str) -> Result<()> {
    if signed_note::is_key_name_valid(origin) && !origin.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AuditError::malformed("the audit log origin", format!("`{origin}` must be non-empty, without spaces or `+`")))
    }
}

/// The log's public (verifier) key.
#[derive(Clone)]
pub struct PublicKey {
    text: String,
    verifier: StandardVerifier,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl PublicKey {
    /// A verifier key from its text `<origin>+<id>+<base64>` (surrounding
    /// white space ignored, so a file's final newline is fine).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let verifier = StandardVerifier::new(text)
            .map_err(|e| AuditError::malformed("the audit public key", format!("`{}`: {e} (expected `<origin>+<id>+<base64>`)", text.chars().take(120).collect::<String>())))?;
        Ok(Self { text: text.to_string(), verifier })
    }

    fn from_private(private: &str) -> Result<Self> {
        use base64::Engine;
        let malformed = || AuditError::malformed("the audit signing key", "expected `PRIVATE+KEY+<origin>+<id>+<base64>`");
        let mut parts = private.splitn(5, '+');
        let (Some(_), Some(_), Some(name), Some(_), Some(key)) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        let key = base64::engine::general_purpose::STANDARD.decode(key).map_err(|_| malformed())?;
        let seed: [u8; 32] = key.get(1..).and_then(|k| k.try_into().ok()).ok_or_else(malformed)?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        Self::parse(&signed_note::new_ed25519_verifier_key(name, &signing.verifying_key()))
    }

    /// The text form, as `modelops audit key` prints it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The origin (the key's name).
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    pub(crate) fn verifier(&self) -> &StandardVerifier {
        &self.verifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit.key");
        let (first, created) = LogSigner::load_or_create(&path, Some("bank.example/audit")).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, created) = LogSigner::load_or_create(&path, None).unwrap();
        assert!(!created);
        assert_eq!(again.public_key(), first.public_key());
        assert!(first.public_key().text().starts_with("bank.example/audit+"));
        assert_eq!(PublicKey::parse(first.public_key().text()).unwrap(), *first.public_key());
        let err = LogSigner::load_or_create(&path, Some("other")).unwrap_err();
        assert!(err.to_string().contains("origin `bank.example/audit`"), "{err}");
    }

    #[test]
    fn malformed_keys_and_origins_are_named() {
        assert!(PublicKey::parse("not a key").unwrap_err().to_string().contains("audit public key"));
        assert!(LogSigner::from_private("PRIVATE+KEY+x").is_err());
        assert!(LogSigner::generate("has space").is_err());
        assert!(LogSigner::generate("a+b").is_err());
    }
}
