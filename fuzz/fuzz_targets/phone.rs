//! Phone-number parsing on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plantilla::domain::phone::PhoneNumber;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match PhoneNumber::parse(input) {
        Ok(phone) => {
            let digits = phone.as_str();
            assert_eq!(digits, input, "a number is kept as written");
            assert!(
                !digits.is_empty() && digits.len() <= 15,
                "E.164: 1 to 15 digits"
            );
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "digits only");
            assert!(!digits.starts_with('0'), "no trunk or international prefix");
            let code = phone.calling_code();
            assert!((1..=999).contains(&code));
            assert_eq!(format!("{code}{}", phone.national_number()), digits);
            assert_eq!(phone.to_string(), digits);
            assert_eq!(input.parse::<PhoneNumber>().as_ref(), Ok(&phone));
        }
        Err(e) => {
            // The message for integrators is never empty.
            assert!(!e.to_string().is_empty());
        }
    }
});
