//! Card passwords: argon2id hashing into PHC strings, and checking them.
//!
//! Passwords are 1 to 128 bytes of UTF-8. The upper bound keeps one login's work
//! bounded (argon2 pre-hashes the password, but a megabyte body would still be read and
//! hashed); the lower bound refuses the empty password outright.
//!
//! A PHC string carries its own parameters, so a hash made under old parameters keeps
//! verifying after the server's parameters change. Because those parameters come from
//! data, every hash we accept or verify is checked against [`PasswordParams::validate`]'s
//! bounds: an imported hash cannot make a login allocate gigabytes.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 1;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 128;
/// Largest memory cost accepted from configuration or a PHC string: 64 MiB. A hash
/// from an import decides what one login costs, so the bounds are a few times OWASP's
/// settings, not argon2's own limits: a planted `m=1 GiB, t=10` hash would stall logins.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;
/// Largest work (memory × passes) accepted: 128 MiB-passes, 3.4× the default's 38 MiB-passes,
/// about 50 ms of one core here.
pub const MAX_WORK_KIB: u64 = 128 * 1024;
/// Largest iteration count accepted.
pub const MAX_ITERATIONS: u32 = 10;
/// Most lanes accepted.
pub const MAX_PARALLELISM: u32 = 8;
/// Hash output lengths accepted from a PHC string, in bytes.
const OUTPUT_BYTES: std::ops::RangeInclusive<usize> = 16..=64;
/// Bytes of random salt per hash (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// The argon2id cost parameters for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB, 2 iterations,
/// 1 lane. A login burst is many concurrent hashes on few cores, so memory per hash is
/// what limits throughput and we take the floor, not more; one lane because
/// parallelism inside a hash would only steal cores from other logins.
impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordParams {
    /// Checks the bounds: parallelism 1..=8, iterations 1..=10, memory from argon2's
    /// floor of 8 KiB per lane up to 64 MiB, memory × iterations at most 128 MiB.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(format!(
                "argon2 parallelism must be 1 to {MAX_PARALLELISM}, not {}",
                self.parallelism
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "argon2 iterations must be 1 to {MAX_ITERATIONS}, not {}",
                self.iterations
            ));
        }
        let floor = 8 * self.parallelism;
        if !(floor..=MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(format!(
                "argon2 memory must be {floor} to {MAX_MEMORY_KIB} KiB, not {}",
                self.memory_kib
            ));
        }
        let work = u64::from(self.memory_kib) * u64::from(self.iterations);
        if work > MAX_WORK_KIB {
            return Err(format!(
                "argon2 memory x iterations must be at most {MAX_WORK_KIB} KiB, not {work}"
            ));
        }
        Ok(())
    }

    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        self.validate().map_err(PasswordError::Params)?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Why a password could not be hashed or a PHC string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password is 1 to 128 bytes")]
    Length,
    #[error("{0}")]
    Params(String),
    #[error("not a PHC string")]
    Malformed,
    #[error("only argon2id password hashes are accepted")]
    Algorithm,
    #[error("the operating system's random source failed")]
    Random,
}

/// Hashes `password` with a fresh random salt into an argon2id PHC string.
pub fn hash(password: &str, params: PasswordParams) -> Result<String, PasswordError> {
    check_length(password)?;
    let argon2 = params.argon2()?;
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Malformed)?;
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Params(e.to_string()))
}

/// Whether `password` matches `phc`, under the parameters written in `phc`. False for
/// a malformed or refused (see [`check_phc`]) hash, and for a password of the wrong
/// length, without doing the hashing work.
pub fn verify(phc: &str, password: &str) -> bool {
    if check_length(password).is_err() {
        return false;
    }
    let Ok(parsed) = parse_checked(phc) else {
        return false;
    };
    // `Argon2::default()` only supplies the verifier: algorithm, version and costs are
    // taken from `parsed`, and the comparison of outputs is constant-time.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Accepts a PHC string for storage (registry import): it must parse, be argon2id
/// version 19, and carry parameters and an output length within bounds.
pub fn check_phc(phc: &str) -> Result<(), PasswordError> {
    parse_checked(phc).map(|_| ())
}

/// Does the work of one [`verify`] and throws the result away, so that a login for an
/// unknown account takes as long as one with a wrong password. Verifies against a
/// dummy hash computed once, under the `params` of the first call (a server runs with
/// one set of parameters); a call with other parameters hashes afresh, which costs the
/// same.
pub fn burn(password: &str, params: PasswordParams) {
    static DUMMY: OnceLock<Option<(PasswordParams, String)>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash("slotd-dummy-password", params)
            .ok()
            .map(|phc| (params, phc))
    });
    match dummy {
        Some((p, phc)) if *p == params => {
            std::hint::black_box(verify(phc, password));
        }
        _ => {
            if check_length(password).is_ok() {
                std::hint::black_box(hash(password, params).is_ok());
            }
        }
    }
}

fn check_length(password: &str) -> Result<(), PasswordError> {
    if (MIN_PASSWORD_BYTES..=MAX_PASSWORD_BYTES).contains(&password.len()) {
        Ok(())
    } else {
        Err(PasswordError::Length)
    }
}

fn parse_checked(phc: &str) -> Result<PasswordHash<'_>, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::Malformed)?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(PasswordError::Algorithm);
    }
    if parsed
        .version
        .is_some_and(|v| v != u32::from(Version::V0x13))
    {
        return Err(PasswordError::Algorithm);
    }
    let output = parsed.hash.ok_or(PasswordError::Malformed)?;
    if parsed.salt.is_none() || !OUTPUT_BYTES.contains(&output.len()) {
        return Err(PasswordError::Malformed);
    }
    let params = Params::try_from(&parsed).map_err(|_| PasswordError::Malformed)?;
    PasswordParams {
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    }
    .validate()
    .map_err(PasswordError::Params)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small enough to keep the tests fast.
    const FAST: PasswordParams = PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hash_then_verify_round_trips() {
        let phc = hash("correct horse", FAST).expect("hashes");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(verify(&phc, "correct horse"));
        assert_eq!(check_phc(&phc), Ok(()));
    }

    #[test]
    fn same_password_gets_a_different_salt_each_time() {
        let a = hash("pw", FAST).expect("hashes");
        let b = hash("pw", FAST).expect("hashes");
        assert_ne!(a, b);
        assert!(verify(&a, "pw") && verify(&b, "pw"));
    }

    #[test]
    fn wrong_password_does_not_verify() {
        let phc = hash("correct horse", FAST).expect("hashes");
        assert!(!verify(&phc, "correct horsf"));
        assert!(!verify(&phc, "Correct horse"));
        assert!(!verify(&phc, ""));
    }

    #[test]
    fn malformed_hash_does_not_verify() {
        for bad in [
            "",
            "plain",
            "$argon2id$",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA",
        ] {
            assert!(!verify(bad, "pw"), "{bad}");
            assert!(check_phc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_length_is_bounded() {
        assert_eq!(hash("", FAST), Err(PasswordError::Length));
        assert_eq!(hash(&"x".repeat(129), FAST), Err(PasswordError::Length));
        let longest = "x".repeat(128);
        let phc = hash(&longest, FAST).expect("128 bytes is allowed");
        assert!(verify(&phc, &longest));
        assert!(!verify(&phc, &"x".repeat(129)));
    }

    #[test]
    fn other_argon2_variants_are_rejected() {
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let params = Params::new(64, 1, 1, None).expect("params");
        for alg in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let phc = Argon2::new(alg, Version::V0x13, params.clone())
                .hash_password(b"pw", &salt)
                .expect("hashes")
                .to_string();
            assert_eq!(check_phc(&phc), Err(PasswordError::Algorithm), "{phc}");
            assert!(!verify(&phc, "pw"));
        }
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
            .hash_password(b"pw", &salt)
            .expect("hashes")
            .to_string();
        assert_eq!(check_phc(&old), Err(PasswordError::Algorithm), "{old}");
    }

    #[test]
    fn huge_costs_in_a_phc_string_are_rejected() {
        let phc = hash("pw", FAST).expect("hashes");
        for (from, to) in [
            ("m=64,", "m=4194304,"),
            ("t=1,", "t=11,"),
            ("m=64,t=1,p=1$", "m=1024,t=1,p=9$"),
        ] {
            let planted = phc.replace(from, to);
            assert!(
                matches!(check_phc(&planted), Err(PasswordError::Params(_))),
                "{planted}"
            );
            assert!(!verify(&planted, "pw"));
        }
    }

    #[test]
    fn params_are_bounded() {
        assert_eq!(PasswordParams::default().validate(), Ok(()));
        assert_eq!(FAST.validate(), Ok(()));
        for bad in [
            PasswordParams {
                memory_kib: 7,
                ..FAST
            },
            PasswordParams {
                memory_kib: MAX_MEMORY_KIB + 1,
                ..FAST
            },
            PasswordParams {
                memory_kib: 16,
                parallelism: 4,
                ..FAST
            },
            PasswordParams {
                iterations: 0,
                ..FAST
            },
            PasswordParams {
                iterations: 11,
                ..FAST
            },
            PasswordParams {
                parallelism: 0,
                ..FAST
            },
            PasswordParams {
                parallelism: 9,
                memory_kib: 1024,
                ..FAST
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
            assert!(matches!(hash("pw", bad), Err(PasswordError::Params(_))));
        }
    }

    #[test]
    fn burn_runs_for_known_and_other_params() {
        burn("anything", FAST);
        burn("anything", FAST);
        burn(
            "anything",
            PasswordParams {
                memory_kib: 128,
                ..FAST
            },
        );
        burn("", FAST);
    }
}
