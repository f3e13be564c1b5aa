//! Passwords, session tokens and the name rules; and `Hasher`, the helper
//! thread that runs argon2 off the event loop and wakes it with the result.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

/// Session lifetime, renewed on use.
pub const SESSION_MS: i64 = 30 * 24 * 3600 * 1000;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
/// Hash jobs waiting at most; past it, sign-ups and logins get 503 `busy`.
pub const HASH_QUEUE: usize = 16;

/// Usernames and room names: 1 to 32 of `[A-Za-z0-9_.-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

pub fn valid_password(password: &str) -> bool {
    (PASSWORD_MIN..=PASSWORD_MAX).contains(&password.len())
}

/// argon2id with the OWASP parameters: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    // unwrap: constant parameters within argon2's documented ranges.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system RNG failing is not recoverable; ring documents it as rare.
    SystemRandom::new().fill(&mut b).expect("system random number generator");
    b
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| e.to_string())?;
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A new session token (256 random bits, hex) and the hash that is stored.
pub fn new_token() -> (String, [u8; 32]) {
    let token: String = random_bytes::<32>().iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    (token, hash)
}

/// A single-use invite code: 10 characters of an unambiguous alphabet.
pub fn invite_code() -> String {
    random_text::<10>()
}

/// A password to hand out (`hearth admin reset-password`): 16 characters.
pub fn random_password() -> String {
    random_text::<16>()
}

fn random_text<const N: usize>() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    random_bytes::<N>().iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Only this hash of a token is stored: a stolen database holds no sessions.
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Work for the helper thread.
pub enum Job {
    Hash {
        id: u64,
        password: String,
    },
    /// `phc: None` (unknown user) verifies against a dummy hash, so the answer
    /// takes as long as for a real user.
    Verify {
        id: u64,
        password: String,
        phc: Option<String>,
    },
}

pub enum JobDone {
    Hashed { id: u64, result: Result<String, String> },
    Verified { id: u64, ok: bool },
}

/// The queue is full: answer 503 `busy`.
#[derive(Debug)]
pub struct Busy;

/// Runs argon2 on a helper thread; results come back through a channel and
/// a `mio::Waker`, so the loop never waits for a hash.
pub struct Hasher {
    jobs: SyncSender<Job>,
    done: Receiver<JobDone>,
}

impl Hasher {
    pub fn start(waker: Arc<mio::Waker>) -> Hasher {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(HASH_QUEUE);
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("hearth-hasher".into())
            .spawn(move || {
                let dummy = hash_password("not a real password, only for timing").unwrap_or_default();
                for job in job_rx {
                    let result = match job {
                        Job::Hash { id, password } => {
                            JobDone::Hashed { id, result: hash_password(&password) }
                        }
                        Job::Verify { id, password, phc } => {
                            let real = phc.is_some();
                            let ok = verify_password(&password, phc.as_deref().unwrap_or(&dummy));
                            JobDone::Verified { id, ok: ok && real }
                        }
                    };
                    if done_tx.send(result).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })
            // Failing to start a thread at start-up is fatal and rare.
            .expect("start the password hashing thread");
        Hasher { jobs, done }
    }

    pub fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Results ready now.
    pub fn finished(&self) -> Vec<JobDone> {
        self.done.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert!(valid_name("Ann_B.c-9"));
        assert!(valid_name(&"a".repeat(32)));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(33)));
        assert!(!valid_name("no spaces"));
        assert!(!valid_name("émile"));
    }

    #[test]
    fn passwords_are_8_to_1024_bytes() {
        assert!(!valid_password("1234567"));
        assert!(valid_password("12345678"));
        assert!(valid_password(&"x".repeat(1024)));
        assert!(!valid_password(&"x".repeat(1025)));
    }

    #[test]
    fn hash_verifies_right_password_only() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_256_bits_and_stored_hashed() {
        let (t, h) = new_token();
        assert_eq!(t.len(), 64);
        assert_eq!(token_hash(&t), h);
        assert_ne!(new_token().0, t);
    }
}
