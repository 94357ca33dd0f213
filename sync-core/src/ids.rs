//! Identifier newtypes.
//!
//! Every id that crosses a boundary (HTTP, FFI, a synced document) is parsed into one of these
//! before the rest of the code sees it, so a hazard id can never be passed where a visit id is
//! expected and a malformed id is refused at the edge with a specific error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: expected a UUID")]
pub struct IdError {
    /// Which kind of id was expected.
    pub kind: &'static str,
    /// The text that was given (truncated to 64 characters).
    pub value: String,
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// Parses the canonical text form.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

uuid_id!(
    /// A factory, workshop or other workplace under a service contract.
    EnterpriseId,
    "enterprise"
);
uuid_id!(
    /// A third-party safety service agency.
    AgencyId,
    "agency"
);
uuid_id!(
    /// A township, street office or development zone (the local regulator).
    TownshipId,
    "township"
);
uuid_id!(
    /// A user account.
    UserId,
    "user"
);
uuid_id!(
    /// An enrolled phone or browser.
    DeviceId,
    "device"
);
uuid_id!(
    /// An inspection visit (one document).
    VisitId,
    "visit"
);
uuid_id!(
    /// A hazard (one document, outliving the visit that found it).
    HazardId,
    "hazard"
);
uuid_id!(
    /// One rectification event in a hazard's history.
    EventId,
    "event"
);

/// An organisation id of any kind: users belong to exactly one organisation.
pub type OrgId = Uuid;

/// A SHA-256 digest, e.g. of a photo's original bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sha256(#[serde(with = "hex_32")] [u8; 32]);

impl Sha256 {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The digest of `data`.
    pub fn digest(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(data).into())
    }
    /// Parses 64 lowercase or uppercase hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let err = || IdError {
            kind: "sha256",
            value: s.chars().take(64).collect(),
        };
        if s.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", hex::encode(self.0))
    }
}

impl FromStr for Sha256 {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let mut out = [0u8; 32];
            hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
            Ok(out)
        } else {
            let v: Vec<u8> = Deserialize::deserialize(d)?;
            v.try_into()
                .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_refuse_garbage() {
        let id = HazardId::new_random();
        assert_eq!(HazardId::parse(&id.to_string()), Ok(id));
        let err = HazardId::parse("not-a-uuid").unwrap_err();
        assert_eq!(err.kind, "hazard");
    }

    #[test]
    fn sha256_parses_hex_and_refuses_wrong_length() {
        let d = Sha256::digest(b"abc");
        assert_eq!(Sha256::parse(&d.to_string()), Ok(d));
        assert!(Sha256::parse("abcd").is_err());
        assert!(Sha256::parse(&"zz".repeat(32)).is_err());
    }
}
