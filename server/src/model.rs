//! Account vocabulary parsed at the edge: roles, organisation kinds and the unified social credit
//! code, so that the rest of the server handles only values that are already valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user does: the one role type, from sync-core (the policy decides by it); stored as
/// its snake_case text.
pub use sync_core::domain::Role;

/// The kind of organisation a user with `role` belongs to.
pub fn org_kind(role: Role) -> OrgKind {
    match role {
        Role::Inspector | Role::AgencyAdmin => OrgKind::Agency,
        Role::EnterpriseManager => OrgKind::Enterprise,
        Role::Supervisor => OrgKind::Township,
    }
}

/// The three kinds of organisation a user can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Township,
    Agency,
    Enterprise,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Township => "township",
            OrgKind::Agency => "agency",
            OrgKind::Enterprise => "enterprise",
        }
    }

    /// Chinese name, for messages.
    pub fn zh(self) -> &'static str {
        match self {
            OrgKind::Township => "乡镇（街道）",
            OrgKind::Agency => "服务机构",
            OrgKind::Enterprise => "企业",
        }
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown organisation kind {0:?}")]
pub struct UnknownOrgKind(pub String);

impl FromStr for OrgKind {
    type Err = UnknownOrgKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "township" => Ok(OrgKind::Township),
            "agency" => Ok(OrgKind::Agency),
            "enterprise" => Ok(OrgKind::Enterprise),
            other => Err(UnknownOrgKind(other.to_owned())),
        }
    }
}

/// A unified social credit code (统一社会信用代码) whose format and check digit follow GB 32100-2015.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Uscc(String);

/// The 31 characters a code may use: digits and capitals without I, O, Z, S, V.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1–17: 3^(i-1) mod 31.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a string is not a unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error(
        "统一社会信用代码应为 18 位，实为 {0} 位 / a unified social credit code has 18 characters, not {0}"
    )]
    Length(usize),
    #[error(
        "统一社会信用代码第 {position} 位字符 {found:?} 无效 / invalid character {found:?} at position {position}"
    )]
    Character { position: usize, found: char },
    #[error(
        "统一社会信用代码第 3–8 位应为行政区划代码（数字） / positions 3–8 must be the digits of an administrative division code"
    )]
    Division,
    #[error(
        "统一社会信用代码校验码错误，应为 {expected} / wrong check character, expected {expected}"
    )]
    CheckDigit { expected: char },
}

impl Uscc {
    /// Parses a code, accepting lowercase letters and surrounding spaces.
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let code = input.trim().to_ascii_uppercase();
        let count = code.chars().count();
        if count != 18 {
            return Err(UsccError::Length(count));
        }
        let mut values = [0u32; 18];
        for (index, ch) in code.chars().enumerate() {
            let value = u8::try_from(ch)
                .ok()
                .and_then(|byte| USCC_ALPHABET.iter().position(|&a| a == byte))
                .ok_or(UsccError::Character {
                    position: index + 1,
                    found: ch,
                })?;
            values[index] = value as u32;
        }
        if values[2..8].iter().any(|&v| v > 9) {
            return Err(UsccError::Division);
        }
        let sum: u32 = values[..17]
            .iter()
            .zip(USCC_WEIGHTS)
            .map(|(value, weight)| value * weight)
            .sum();
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(UsccError::CheckDigit {
                expected: char::from(USCC_ALPHABET[check as usize]),
            });
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Completes 17 characters with their check character (for demo data and tests).
    pub fn with_check_digit(first17: &str) -> Result<Self, UsccError> {
        let code = first17.trim().to_ascii_uppercase();
        if code.chars().count() != 17 {
            return Err(UsccError::Length(code.chars().count() + 1));
        }
        let mut sum = 0u32;
        for (index, ch) in code.chars().enumerate() {
            let value = u8::try_from(ch)
                .ok()
                .and_then(|byte| USCC_ALPHABET.iter().position(|&a| a == byte))
                .ok_or(UsccError::Character {
                    position: index + 1,
                    found: ch,
                })?;
            sum += value as u32 * USCC_WEIGHTS[index];
        }
        let check = (31 - sum % 31) % 31;
        Uscc::parse(&format!(
            "{code}{}",
            char::from(USCC_ALPHABET[check as usize])
        ))
    }
}

impl FromStr for Uscc {
    type Err = UsccError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_code_is_accepted() {
        // A code printed on a real business licence.
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
    }

    #[test]
    fn lowercase_and_spaces_are_normalised() {
        let code = Uscc::parse(" 91350100m000100y43 ").expect("valid code");
        assert_eq!(code.as_str(), "91350100M000100Y43");
    }

    #[test]
    fn a_wrong_check_character_is_refused_with_the_expected_one() {
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(UsccError::CheckDigit { expected: '3' })
        );
    }

    #[test]
    fn letters_outside_the_alphabet_are_refused() {
        assert!(matches!(
            Uscc::parse("91350100M000100O43"),
            Err(UsccError::Character { position: 16, .. })
        ));
    }

    #[test]
    fn codes_of_the_wrong_length_are_refused() {
        assert_eq!(Uscc::parse("9135010"), Err(UsccError::Length(7)));
    }

    #[test]
    fn roles_round_trip_through_their_strings() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
