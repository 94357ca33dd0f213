//! The content address of a photo: its SHA-256, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::PhotoError;

/// SHA-256 of a photo's original bytes. Displays and serializes as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhotoHash([u8; 32]);

impl PhotoHash {
    /// Wraps a raw digest.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Hashes `content` (for tests and small inputs; uploads hash incrementally).
    pub fn of(content: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(content).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, the form used in file names and on the wire.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for PhotoHash {
    type Err = PhotoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(PhotoError::InvalidHash(s.chars().take(80).collect()));
        }
        Ok(Self(out))
    }
}

impl TryFrom<&str> for PhotoHash {
    type Error = PhotoError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for PhotoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PhotoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhotoHash({})", self.to_hex())
    }
}

impl Serialize for PhotoHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PhotoHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parses_upper_and_lower_case_hex_and_prints_lowercase() {
        let lower = PhotoHash::of(b"abc").to_hex();
        let parsed: PhotoHash = lower.to_uppercase().parse().expect("valid hex");
        assert_eq!(parsed.to_string(), lower);
    }

    #[test]
    fn hash_refuses_wrong_length_and_non_hex() {
        assert!("abc".parse::<PhotoHash>().is_err());
        assert!("g".repeat(64).parse::<PhotoHash>().is_err());
        assert!("../".repeat(22)[..64].parse::<PhotoHash>().is_err());
    }
}
