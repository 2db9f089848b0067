//! Access tokens (JWT, HS256, pinned) and refresh tokens (opaque, stored hashed).
//!
//! The algorithm is fixed on both sides: a token whose header names another algorithm
//! (including `none`) is rejected, so there is no algorithm confusion. Access tokens are
//! short-lived and carry the session id (`sid`), which every request checks against the
//! database so that logout and revocation take effect at once.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{Config, MIN_JWT_SECRET_BYTES};
use crate::error::Error;

/// Name of the generated secret inside the data dir.
pub const SECRET_FILE: &str = "jwt_secret";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub sid: Uuid,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
}

/// The audience of operator tokens: the admin API only.
const OPERATOR_AUDIENCE: &str = "chatd-admin";
/// The subject of operator tokens. Not a user id, so an operator token is never a user's.
const OPERATOR_SUBJECT: &str = "operator";
/// How long a minted operator token lasts; `chatd tui` mints a new one as it reconnects.
pub const OPERATOR_TOKEN_TTL_SECS: u64 = 300;

/// A token for the admin API minted by whoever holds the signing secret (`chatd tui` on the
/// server's own machine): no user, no session, audience `chatd-admin`. User routes refuse it
/// (its subject is not a user id); admin routes accept it as the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OperatorClaims {
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    iss: String,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    operator_validation: Validation,
    issuer: String,
    access_ttl_secs: u64,
    /// Names the secret without revealing it (see `key_id`).
    key_id: String,
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, access_ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 5;
        let mut operator_validation = validation.clone();
        operator_validation.set_audience(&[OPERATOR_AUDIENCE]);
        operator_validation.sub = Some(OPERATOR_SUBJECT.into());
        operator_validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            operator_validation,
            issuer: issuer.to_string(),
            access_ttl_secs,
            key_id: key_id(secret),
        }
    }

    /// A short public name of the signing secret: nodes compare theirs to find one that signs
    /// with another secret (its tokens are refused by the others).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Builds the keys from config: `auth.jwt_secret`, else `auth.jwt_secret_file`, else a
    /// secret generated once into `<data_dir>/jwt_secret` (mode 0600). Never logs the secret.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let secret = load_secret(config)?;
        Ok(Self::new(
            &secret,
            &config.auth.issuer,
            config.auth.access_token_ttl_secs,
        ))
    }

    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    pub fn issue(&self, user_id: Uuid, session_id: Uuid) -> Result<String, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            iat: now,
            exp: now.saturating_add(self.access_ttl_secs),
            iss: self.issuer.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(token_error)
    }

    /// An operator token for the admin API, valid for `ttl_secs`.
    pub fn issue_operator(&self, ttl_secs: u64) -> Result<String, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = OperatorClaims {
            sub: OPERATOR_SUBJECT.into(),
            aud: OPERATOR_AUDIENCE.into(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
            iss: self.issuer.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    /// Whether `token` is a valid operator token.
    pub fn verify_operator(&self, token: &str) -> Result<(), Error> {
        decode::<OperatorClaims>(token, &self.decoding, &self.operator_validation)
            .map(|_| ())
            .map_err(token_error)
    }
}

fn token_error(e: jsonwebtoken::errors::Error) -> Error {
    match e.kind() {
        ErrorKind::ExpiredSignature => Error::unauthorized("token_expired", "the access token has expired; refresh it"),
        _ => Error::unauthorized("invalid_token", "the access token is not valid"),
    }
}

/// Mints an operator token from the configured signing secret, for `chatd tui` run where the
/// server runs. Never creates a secret: one that does not exist yet cannot be the server's.
pub fn operator_token(config: &Config) -> anyhow::Result<String> {
    let generated = config.server.data_dir.join(SECRET_FILE);
    anyhow::ensure!(
        config.auth.jwt_secret.is_some() || config.auth.jwt_secret_file.is_some() || generated.exists(),
        "no signing secret here (auth.jwt_secret, auth.jwt_secret_file or {}): run this on the server's machine with its configuration, or sign in with --username",
        generated.display()
    );
    let keys = TokenKeys::from_config(config)?;
    Ok(keys.issue_operator(OPERATOR_TOKEN_TTL_SECS)?)
}

/// A new opaque refresh token and the hash to store.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn load_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    if let Some(s) = &config.auth.jwt_secret {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(path) = &config.auth.jwt_secret_file {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read auth.jwt_secret_file {}", path.display()))?;
        let s = s.trim().as_bytes().to_vec();
        anyhow::ensure!(
            s.len() >= MIN_JWT_SECRET_BYTES,
            "auth.jwt_secret_file {}: the secret must be at least {MIN_JWT_SECRET_BYTES} bytes",
            path.display()
        );
        return Ok(s);
    }
    generated_secret(&config.server.data_dir.join(SECRET_FILE))
}

#[cfg(test)]
mod operator_tests {
    use super::*;

    #[test]
    fn operator_and_user_tokens_are_not_interchangeable() {
        let keys = TokenKeys::new(&[7u8; 32], "chatd", 900);
        let operator = keys.issue_operator(60).unwrap();
        keys.verify_operator(&operator).unwrap();
        assert!(keys.verify(&operator).is_err(), "an operator token is no user's");
        let user = keys.issue(Uuid::new_v4(), Uuid::new_v4()).unwrap();
        keys.verify(&user).unwrap();
        assert!(keys.verify_operator(&user).is_err(), "a user token is no operator's");
        let other = TokenKeys::new(&[8u8; 32], "chatd", 900);
        assert!(other.verify_operator(&operator).is_err(), "signed with another secret");
    }
}

/// The first 8 bytes of SHA-256 over a fixed label and the secret, in hex: equal for equal
/// secrets, and telling nothing of a secret of 32 bytes or more.
fn key_id(secret: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(b"chatd signing key id\0")
        .chain_update(secret)
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn generated_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let read = |path: &Path| -> anyhow::Result<Vec<u8>> {
        let s = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let s = s.trim().as_bytes().to_vec();
        anyhow::ensure!(
            s.len() >= MIN_JWT_SECRET_BYTES,
            "{} is too short: delete it to generate a new one",
            path.display()
        );
        Ok(s)
    };
    match std::fs::metadata(path) {
        Ok(_) => return read(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let write_new = |target: &Path| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()
    };
    // Written whole under a private name, then linked into place: a process racing this one
    // either sees no file or the complete winner, never a half-written secret.
    let staging = dir.join(format!(
        ".{SECRET_FILE}.{}.{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    write_new(&staging).with_context(|| format!("cannot write {}", staging.display()))?;
    let linked = std::fs::hard_link(&staging, path);
    let _ = std::fs::remove_file(&staging);
    let placed = match linked {
        Ok(()) => Ok(()),
        // A file system without hard links (vfat, some network and FUSE mounts): create the
        // file in place instead.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => write_new(path),
        Err(e) => Err(e),
    };
    match placed {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return read(path),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
    // The new directory entry, durable too.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], "chatd", 60)
    }

    #[test]
    fn round_trip_and_tamper() {
        let k = keys();
        let (u, s) = (Uuid::new_v4(), Uuid::new_v4());
        let t = k.issue(u, s).unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!((c.sub, c.sid), (u, s));
        let mut bad = t.clone();
        bad.pop();
        assert_eq!(k.verify(&bad).unwrap_err().code(), "invalid_token");
        let other = TokenKeys::new(&[8u8; 32], "chatd", 60);
        assert_eq!(other.verify(&t).unwrap_err().code(), "invalid_token");
        let other_iss = TokenKeys::new(&[7u8; 32], "someone-else", 60);
        assert_eq!(other_iss.verify(&t).unwrap_err().code(), "invalid_token");
    }

    #[test]
    fn racing_processes_agree_on_one_generated_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(SECRET_FILE);
        let secrets: Vec<Vec<u8>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8).map(|_| s.spawn(|| generated_secret(&path).unwrap())).collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(secrets[0].len() >= MIN_JWT_SECRET_BYTES);
        assert!(
            secrets.iter().all(|s| *s == secrets[0]),
            "every racer reads the winner's secret"
        );
        assert_eq!(std::fs::read(&path).unwrap(), secrets[0]);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no staging file left behind: {left:?}");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn alg_none_is_rejected() {
        let k = keys();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "sid": Uuid::new_v4(), "iat": now, "exp": now + 60, "iss": "chatd"});
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(k.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn expired_tokens_say_so() {
        let k = keys();
        let claims = Claims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            iat: 1,
            exp: 2,
            iss: "chatd".into(),
        };
        let t = encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap();
        assert_eq!(k.verify(&t).unwrap_err().code(), "token_expired");
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, ha) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a), ha);
        assert_eq!(ha.len(), 32);
    }
}
