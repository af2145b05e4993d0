//! The webhook side on arbitrary bytes: the signature check, and the payload parser on
//! whatever JSON arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plantilla::fake_graph::signature;
use plantilla::service::webhook::{parse, signature_valid};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // Signatures: the first byte splits a secret off the front; the rest is the body.
    let (secret, body) = match data.split_first() {
        Some((&n, rest)) => rest.split_at((n as usize % 32).min(rest.len())),
        None => (&[][..], data),
    };
    let secret = String::from_utf8_lossy(secret);
    let header = String::from_utf8_lossy(body);
    // Arbitrary header text never panics and never passes for an empty secret.
    let arbitrary = signature_valid(&secret, body, Some(&header));
    if secret.is_empty() {
        assert!(!arbitrary);
    }
    assert!(!signature_valid(&secret, body, None));
    if !secret.is_empty() {
        let good = signature(&secret, body);
        assert!(signature_valid(&secret, body, Some(&good)));
        // One changed hex digit is refused.
        let mut bad = good.into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(!signature_valid(
            &secret,
            body,
            Some(std::str::from_utf8(&bad).unwrap())
        ));
    }

    // The parser, on any JSON value.
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let reports = parse(&payload);
    // Each report comes from one element of an array the payload has: never more reports
    // than statuses, messages and template updates together.
    let mut bound = 0usize;
    for entry in payload["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            let v = &change["value"];
            bound += v["statuses"].as_array().map_or(0, Vec::len);
            bound += v["messages"].as_array().map_or(0, Vec::len);
            bound += 1;
        }
    }
    assert!(reports.len() <= bound);
});
