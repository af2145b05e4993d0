//! International phone numbers as the API accepts them.
//!
//! The contract: a phone number is the country calling code followed by the
//! national number, written as ASCII digits only — no `+`, no spaces, dashes
//! or parentheses, no international (`00`) or trunk (`0`) prefix. That is the
//! E.164 number without its `+`, which is also the form WhatsApp uses for
//! `wa_id`s.
//!
//! A number is accepted when it starts with an assigned calling code and the
//! rest has a length libphonenumber considers *possible* for that code (see
//! `phone_data.rs`). Possible is deliberately weaker than valid: a number
//! with a plausible shape is accepted even if its range is not assigned, so
//! newly opened ranges keep working before the metadata catches up.

use std::fmt;
use std::str::FromStr;

use super::phone_data::CALLING_CODES;

/// E.164 allows at most 15 digits, calling code included.
const MAX_DIGITS: usize = 15;

/// Example shown in error messages when the input has no digits to build one from.
const GENERIC_EXAMPLE: &str = "14155552671";

/// National-number lengths accepted on top of libphonenumber's metadata:
/// `(calling code, national length, required leading digits)`.
///
/// Mexico: until 2019 Mexican mobiles were dialled from abroad as
/// `+52 1` + 10 digits. libphonenumber's MX metadata now only lists 10-digit
/// national numbers, but WhatsApp still reports many Mexican numbers as
/// `521` + 10 digits (11-digit national number), so that form is accepted
/// alongside `52` + 10 digits. Numbers are kept as written, not rewritten.
const EXTRA_LENGTHS: &[(u16, usize, &str)] = &[(52, 11, "1")];

/// A phone number in E.164 form without the leading `+`: the country calling
/// code followed by the national number, digits only (e.g. `50755667788`).
///
/// Values can only be built through [`PhoneNumber::parse`] (or [`str::parse`]),
/// so every `PhoneNumber` has a known calling code and a possible length.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses and validates a phone number written as calling code plus
    /// national number, digits only. See the module docs for the rules.
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneError> {
        if input.is_empty() {
            return Err(PhoneError::Empty);
        }
        if input.starts_with('+') {
            return Err(PhoneError::LeadingPlus {
                input: input.to_owned(),
            });
        }
        if let Some((index, character)) =
            input.chars().enumerate().find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(PhoneError::InvalidCharacter {
                input: input.to_owned(),
                character,
                position: index + 1,
            });
        }
        // From here on `input` is non-empty and ASCII digits only.
        if input.starts_with('0') {
            return Err(PhoneError::LeadingZero {
                input: input.to_owned(),
            });
        }
        if input.len() > MAX_DIGITS {
            return Err(PhoneError::TooLong {
                input: input.to_owned(),
            });
        }
        let Some((calling_code, national)) = split_calling_code(input) else {
            return Err(PhoneError::UnknownCallingCode {
                input: input.to_owned(),
            });
        };
        if !is_possible_length(calling_code, national) {
            return Err(PhoneError::ImpossibleLength {
                input: input.to_owned(),
                calling_code,
                national_length: national.len(),
            });
        }
        Ok(PhoneNumber(input.to_owned()))
    }

    /// The number as digits only, calling code first (E.164 without `+`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country calling code, e.g. `507` for `50755667788`.
    pub fn calling_code(&self) -> u16 {
        self.split().0
    }

    /// The digits after the calling code, e.g. `55667788` for `50755667788`.
    pub fn national_number(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (u16, &str) {
        split_calling_code(&self.0).expect("a parsed PhoneNumber starts with a known calling code")
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(input)
    }
}

/// Why a phone number was rejected. The `Display` text is meant for API
/// integrators: it names the field, quotes the input and says how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneError {
    /// The input is the empty string.
    Empty,
    /// The input starts with `+`.
    LeadingPlus { input: String },
    /// The input contains something other than ASCII digits (space, dash,
    /// parenthesis, letter...). `position` is 1-based, in characters.
    InvalidCharacter {
        input: String,
        character: char,
        position: usize,
    },
    /// The input starts with `0` (international `00` or trunk `0` prefix).
    LeadingZero { input: String },
    /// The input has more than 15 digits.
    TooLong { input: String },
    /// No assigned country calling code is a prefix of the input.
    UnknownCallingCode { input: String },
    /// The national number's length is impossible for the calling code.
    ImpossibleLength {
        input: String,
        calling_code: u16,
        national_length: usize,
    },
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Empty => write!(
                f,
                "phoneNumber is empty: write the country code followed by the national \
                 number, digits only, e.g. {GENERIC_EXAMPLE}"
            ),
            PhoneError::LeadingPlus { input } => write!(
                f,
                "phoneNumber must not start with '+': write the country code and number \
                 as digits only, e.g. {}",
                digits_or_example(input)
            ),
            PhoneError::InvalidCharacter {
                input,
                character,
                position,
            } => write!(
                f,
                "phoneNumber must contain digits only (no spaces, dashes or parentheses): \
                 found {} at position {position} in {input:?}; write the country code and \
                 number as digits only, e.g. {}",
                describe_char(*character),
                digits_or_example(input)
            ),
            PhoneError::LeadingZero { input } => match input.strip_prefix("00") {
                Some(rest) if !rest.is_empty() => write!(
                    f,
                    "phoneNumber must not start with 0: {input:?} starts with the \
                     international dialling prefix 00; drop it and start with the country \
                     code, e.g. {rest}"
                ),
                _ => write!(
                    f,
                    "phoneNumber must not start with 0: {input:?} starts with a national \
                     (trunk) prefix 0; write the country code followed by the national number \
                     without its leading 0, e.g. 447911123456 rather than 07911123456"
                ),
            },
            PhoneError::TooLong { input } => write!(
                f,
                "phoneNumber {input:?} has {} digits, but an international (E.164) number \
                 has at most {MAX_DIGITS} digits including the country code; remove any \
                 extra digits or prefixes",
                input.len()
            ),
            PhoneError::UnknownCallingCode { input } => {
                let tried: Vec<&str> = (1..=3.min(input.len())).map(|len| &input[..len]).collect();
                let tried = match tried.as_slice() {
                    [only] => format!("{only} is not assigned"),
                    several => format!("none of {} is assigned", join_alternatives(several)),
                };
                write!(
                    f,
                    "phoneNumber {input:?} does not start with a known country code \
                     ({tried}); it must begin with the country code, e.g. 1 for the US, 52 \
                     for Mexico or 507 for Panama"
                )
            }
            PhoneError::ImpossibleLength {
                input,
                calling_code,
                national_length,
            } => {
                let follow = match national_length {
                    0 => "no digits follow".to_owned(),
                    1 => "1 digit follows".to_owned(),
                    n => format!("{n} digits follow"),
                };
                write!(
                    f,
                    "phoneNumber {input:?} starts with country code {calling_code}, which \
                     must be followed by a national number of {}, but {follow}; \
                     check that the country code is included and no digit is missing or extra",
                    describe_lengths(*calling_code)
                )
            }
        }
    }
}

impl std::error::Error for PhoneError {}

/// Possible national-number lengths of `calling_code` as a bitmask
/// (bit `n` = length `n`), or `None` if the code is not assigned.
fn possible_lengths(calling_code: u16) -> Option<u32> {
    CALLING_CODES
        .binary_search_by_key(&calling_code, |&(code, _)| code)
        .ok()
        .map(|index| CALLING_CODES[index].1)
}

/// Splits `digits` (ASCII digits, no leading 0) into calling code and
/// national number. Calling codes are prefix-free, so at most one of the
/// 1-, 2- and 3-digit prefixes is assigned.
fn split_calling_code(digits: &str) -> Option<(u16, &str)> {
    (1..=3.min(digits.len())).find_map(|len| {
        let (prefix, national) = digits.split_at(len);
        let code = prefix.parse().ok()?;
        possible_lengths(code).map(|_| (code, national))
    })
}

fn is_possible_length(calling_code: u16, national: &str) -> bool {
    let in_metadata = possible_lengths(calling_code).is_some_and(|mask| {
        u32::try_from(national.len())
            .ok()
            .and_then(|len| 1u32.checked_shl(len))
            .is_some_and(|bit| mask & bit != 0)
    });
    in_metadata
        || EXTRA_LENGTHS.iter().any(|&(code, len, prefix)| {
            code == calling_code && len == national.len() && national.starts_with(prefix)
        })
}

/// "8, 9, 10 or 11 digits", plus any extra length, e.g.
/// "10 digits (or 11 digits starting with 1)".
fn describe_lengths(calling_code: u16) -> String {
    let mask = possible_lengths(calling_code).unwrap_or(0);
    let lengths: Vec<String> = (1..32)
        .filter(|len| mask & (1u32 << len) != 0)
        .map(|len| len.to_string())
        .collect();
    let lengths: Vec<&str> = lengths.iter().map(String::as_str).collect();
    let mut text = format!("{} digits", join_alternatives(&lengths));
    for &(code, len, prefix) in EXTRA_LENGTHS {
        if code == calling_code {
            text.push_str(&format!(" (or {len} digits starting with {prefix})"));
        }
    }
    text
}

/// Joins items as "a", "a or b", "a, b or c".
fn join_alternatives(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn describe_char(character: char) -> String {
    match character {
        ' ' => "a space".to_owned(),
        '-' => "a dash".to_owned(),
        '(' | ')' => format!("a parenthesis '{character}'"),
        other => format!("{other:?}"),
    }
}

/// The ASCII digits of `input`, as a suggestion of how to write it, or a
/// generic example if it has none.
fn digits_or_example(input: &str) -> String {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        GENERIC_EXAMPLE.to_owned()
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[track_caller]
    fn accepted(input: &str, calling_code: u16, national: &str) -> PhoneNumber {
        let number = PhoneNumber::parse(input)
            .unwrap_or_else(|error| panic!("{input:?} should be accepted, got: {error}"));
        assert_eq!(number.as_str(), input);
        assert_eq!(
            number.calling_code(),
            calling_code,
            "calling code of {input}"
        );
        assert_eq!(
            number.national_number(),
            national,
            "national number of {input}"
        );
        number
    }

    /// Parses `input`, expects an error, and checks its message mentions every
    /// fragment in `mentions`. Returns the error for further checks.
    #[track_caller]
    fn rejected(input: &str, mentions: &[&str]) -> PhoneError {
        let error = match PhoneNumber::parse(input) {
            Ok(number) => panic!("{input:?} should be rejected, got {number:?}"),
            Err(error) => error,
        };
        let message = error.to_string();
        assert!(message.starts_with("phoneNumber "), "message: {message}");
        for fragment in mentions {
            assert!(
                message.contains(fragment),
                "message for {input:?} should mention {fragment:?}: {message}"
            );
        }
        error
    }

    // --- Contract examples -------------------------------------------------

    #[test]
    fn contract_accepts_panama_possible_but_unassigned() {
        accepted("50755667788", 507, "55667788");
    }

    #[test]
    fn contract_rejects_leading_plus() {
        let error = rejected("+50755667788", &[]);
        assert_eq!(
            error,
            PhoneError::LeadingPlus {
                input: "+50755667788".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "phoneNumber must not start with '+': write the country code and number as \
             digits only, e.g. 50755667788"
        );
    }

    #[test]
    fn contract_rejects_missing_country_code() {
        // 55 is Brazil, whose national numbers have 8 to 11 digits, not 6.
        let error = rejected(
            "55667788",
            &[
                "\"55667788\"",
                "country code 55",
                "8, 9, 10 or 11 digits",
                "6 digits follow",
            ],
        );
        assert_eq!(
            error,
            PhoneError::ImpossibleLength {
                input: "55667788".into(),
                calling_code: 55,
                national_length: 6
            }
        );
    }

    #[test]
    fn contract_rejects_space() {
        let error = rejected(
            "507 55667788",
            &[
                "digits only",
                "a space",
                "position 4",
                "\"507 55667788\"",
                "e.g. 50755667788",
            ],
        );
        assert!(matches!(
            error,
            PhoneError::InvalidCharacter {
                character: ' ',
                position: 4,
                ..
            }
        ));
    }

    // --- Accepted numbers --------------------------------------------------

    #[test]
    fn accepts_common_countries() {
        accepted("14155552671", 1, "4155552671"); // US
        accepted("447911123456", 44, "7911123456"); // UK mobile
        accepted("34612345678", 34, "612345678"); // Spain
        accepted("919876543210", 91, "9876543210"); // India
        accepted("5511987654321", 55, "11987654321"); // Brazil mobile
        accepted("573001234567", 57, "3001234567"); // Colombia mobile
        accepted("971501234567", 971, "501234567"); // UAE, 3-digit code
    }

    #[test]
    fn accepts_german_variable_lengths() {
        accepted("4915112345678", 49, "15112345678"); // mobile, 11 digits
        accepted("4930123456", 49, "30123456"); // Berlin landline, 8 digits
        accepted("491234567890123", 49, "1234567890123"); // 15 digits in total
    }

    #[test]
    fn accepts_both_mexican_forms() {
        accepted("5215512345678", 52, "15512345678"); // WhatsApp's 521 + 10 digits
        accepted("525512345678", 52, "5512345678"); // current 52 + 10 digits
    }

    #[test]
    fn accepts_both_argentine_forms() {
        accepted("5491123456789", 54, "91123456789"); // mobile as WhatsApp writes it
        accepted("541123456789", 54, "1123456789"); // 54 + 10 digits
    }

    #[test]
    fn accepts_non_geographic_codes() {
        accepted("80012345678", 800, "12345678"); // international freephone
        accepted("882123456789", 882, "123456789"); // international networks
    }

    // --- Rejected numbers --------------------------------------------------

    #[test]
    fn rejects_empty() {
        let error = rejected("", &["empty", "country code", "digits only"]);
        assert_eq!(error, PhoneError::Empty);
    }

    #[test]
    fn rejects_letters() {
        let error = rejected("abc", &["digits only", "'a'", "position 1", "\"abc\""]);
        assert!(matches!(
            error,
            PhoneError::InvalidCharacter { character: 'a', .. }
        ));
    }

    #[test]
    fn rejects_plus_with_separators_suggesting_digits() {
        rejected(
            "+1 (415) 555-2671",
            &["must not start with '+'", "e.g. 14155552671"],
        );
        rejected("+", &["must not start with '+'", "e.g. 14155552671"]);
    }

    #[test]
    fn rejects_dashes_and_parentheses() {
        rejected(
            "507-5566-7788",
            &[
                "a dash",
                "position 4",
                "\"507-5566-7788\"",
                "e.g. 50755667788",
            ],
        );
        rejected(
            "(507)55667788",
            &["a parenthesis '('", "position 1", "e.g. 50755667788"],
        );
    }

    #[test]
    fn rejects_surrounding_whitespace_and_non_ascii_digits() {
        rejected(
            "50755667788\n",
            &["'\\n'", "position 12", "e.g. 50755667788"],
        );
        rejected(" 50755667788", &["a space", "position 1"]);
        // Full-width digits are not ASCII digits.
        rejected("５０７55667788", &["'５'", "position 1"]);
    }

    #[test]
    fn rejects_leading_zero() {
        let error = rejected(
            "0050755667788",
            &[
                "must not start with 0",
                "\"0050755667788\"",
                "00",
                "e.g. 50755667788",
            ],
        );
        assert!(matches!(error, PhoneError::LeadingZero { .. }));
        rejected(
            "07911123456",
            &[
                "must not start with 0",
                "\"07911123456\"",
                "without its leading 0",
            ],
        );
        rejected("0", &["must not start with 0"]);
    }

    #[test]
    fn rejects_more_than_15_digits() {
        let error = rejected(
            "4912345678901234",
            &["\"4912345678901234\"", "16 digits", "at most 15 digits"],
        );
        assert!(matches!(error, PhoneError::TooLong { .. }));
    }

    #[test]
    fn rejects_unknown_calling_code() {
        let error = rejected(
            "999123456",
            &[
                "\"999123456\"",
                "known country code",
                "none of 9, 99 or 999 is assigned",
            ],
        );
        assert_eq!(
            error,
            PhoneError::UnknownCallingCode {
                input: "999123456".into()
            }
        );
        // 28 and 281 are unassigned (2 is not a calling code either).
        rejected(
            "2812345678",
            &["\"2812345678\"", "none of 2, 28 or 281 is assigned"],
        );
        rejected("9", &["(9 is not assigned)"]);
    }

    #[test]
    fn rejects_impossible_national_lengths() {
        rejected(
            "3461234567",
            &["country code 34", "of 9 digits", "8 digits follow"],
        );
        rejected(
            "346123456789",
            &["country code 34", "of 9 digits", "10 digits follow"],
        );
        rejected(
            "4475",
            &["country code 44", "7, 9 or 10 digits", "2 digits follow"],
        );
        rejected("1", &["country code 1", "no digits follow"]);
        rejected("507", &["country code 507", "7, 8, 10 or 11 digits"]);
        rejected("5071", &["country code 507", "1 digit follows"]);
        rejected("54911234567890", &["country code 54", "10 or 11 digits"]);
    }

    #[test]
    fn mexican_exception_only_covers_the_mobile_prefix_1() {
        rejected(
            "5225512345678",
            &[
                "country code 52",
                "10 digits (or 11 digits starting with 1)",
                "11 digits follow",
            ],
        );
        rejected("52155123456789", &["country code 52", "12 digits follow"]);
        rejected("52551234567", &["country code 52", "9 digits follow"]);
    }

    // --- API ---------------------------------------------------------------

    #[test]
    fn display_from_str_and_hash() {
        let number: PhoneNumber = "50755667788".parse().expect("valid number");
        assert_eq!(number.to_string(), "50755667788");
        assert_eq!(format!("{number}"), number.as_str());
        let error = "+50755667788".parse::<PhoneNumber>().unwrap_err();
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        assert!(boxed.to_string().contains("must not start with '+'"));
        let set: HashSet<PhoneNumber> = ["14155552671", "14155552671", "447911123456"]
            .into_iter()
            .map(|input| PhoneNumber::parse(input).expect("valid number"))
            .collect();
        assert_eq!(set.len(), 2);
    }

    // --- Generated table ---------------------------------------------------

    #[test]
    fn table_is_sorted_prefix_free_and_in_range() {
        assert!(CALLING_CODES.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let texts: Vec<String> = CALLING_CODES
            .iter()
            .map(|(code, _)| code.to_string())
            .collect();
        for (code, mask) in CALLING_CODES {
            assert!((1..=999).contains(code), "calling code {code}");
            assert_ne!(*mask, 0, "calling code {code} has no lengths");
            assert_eq!(
                mask & !0x0003_fffe,
                0,
                "calling code {code} has lengths outside 1..=17"
            );
        }
        for a in &texts {
            for b in &texts {
                assert!(
                    a == b || !b.starts_with(a.as_str()),
                    "{a} is a prefix of {b}"
                );
            }
        }
    }

    #[test]
    fn table_includes_non_geographic_codes() {
        for code in [800, 808, 870, 878, 881, 882, 883, 888, 979] {
            assert!(
                possible_lengths(code).is_some(),
                "non-geographic code {code}"
            );
        }
    }
}
