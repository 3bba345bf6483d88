//! Content digests (`sha256:<hex>`), parsed once at the boundary.
//!
//! Everything that names content by hash goes through [`Digest`]: a value of this type is
//! always a supported algorithm with a well-formed, lower-case hex encoding of the right length.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

/// A supported digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default everywhere in OCI.
    Sha256,
    /// SHA-512, allowed by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest such as `sha256:e3b0…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("digest has no algorithm prefix (expected sha256:<hex>)")]
    MissingAlgorithm,
    /// An algorithm other than sha256/sha512.
    #[error("unsupported digest algorithm (expected sha256 or sha512)")]
    UnsupportedAlgorithm,
    /// Wrong length or non-hex characters.
    #[error("malformed digest hex (expected {expected} lower-case hex characters)")]
    MalformedHex {
        /// Expected number of hex characters.
        expected: usize,
    },
}

impl Digest {
    /// Parses `algorithm:hex`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::MissingAlgorithm)?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::UnsupportedAlgorithm),
        };
        let expected = algorithm.hex_len();
        if hex.len() != expected || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::MalformedHex { expected });
        }
        Ok(Digest { algorithm, hex: hex.to_owned() })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Digest { algorithm: Algorithm::Sha256, hex: hex::encode(Sha256::digest(bytes)) }
    }

    /// The digest of `bytes` computed with this digest's algorithm.
    pub fn same_algorithm_of(&self, bytes: &[u8]) -> Self {
        match self.algorithm {
            Algorithm::Sha256 => Digest::sha256(bytes),
            Algorithm::Sha512 => Digest { algorithm: Algorithm::Sha512, hex: hex::encode(Sha512::digest(bytes)) },
        }
    }

    /// True when `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.same_algorithm_of(bytes) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The 32 bytes of a SHA-256 digest; `None` for another algorithm.
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        if self.algorithm != Algorithm::Sha256 {
            return None;
        }
        hex::decode(&self.hex).ok().and_then(|v| v.try_into().ok())
    }

    /// cosign's tag stem for things attached to this digest: `sha256-<hex>`.
    pub fn tag_stem(&self) -> String {
        format!("{}-{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256() {
        let d = Digest::sha256(b"");
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::parse(&d.to_string()), Ok(d.clone()));
        assert!(d.matches(b""));
        assert!(!d.matches(b"x"));
        assert_eq!(d.tag_stem(), format!("sha256-{}", d.hex()));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Digest::parse("abc"), Err(DigestError::MissingAlgorithm));
        assert_eq!(Digest::parse("md5:00"), Err(DigestError::UnsupportedAlgorithm));
        assert!(Digest::parse("sha256:ABC").is_err());
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(Digest::parse(&upper).is_err());
        let short = format!("sha256:{}", "a".repeat(63));
        assert!(Digest::parse(&short).is_err());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(128))).is_ok());
    }
}
