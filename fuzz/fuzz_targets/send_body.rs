//! The send body parser of both template API families, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plantilla::domain::phone::PhoneNumber;
use plantilla::http::compat::{Family, parse_send_body};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    for family in [Family::Old, Family::New] {
        match parse_send_body(data, family) {
            Ok(req) => {
                // Only a JSON object with a template id and a valid number is accepted.
                let value: Value = serde_json::from_slice(data).expect("accepted, so JSON");
                let obj = value.as_object().expect("accepted, so an object");
                assert!(!req.template_id.is_empty());
                assert_eq!(req.template_id, req.template_id.trim());
                assert_eq!(
                    obj["templateId"].as_str().map(str::trim),
                    Some(req.template_id.as_str())
                );
                let phone = req.phone.as_str();
                assert!(phone.len() <= 15 && phone.bytes().all(|b| b.is_ascii_digit()));
                assert_eq!(PhoneNumber::parse(phone).as_ref(), Ok(&req.phone));
                // Params are the object's non-null entries, as text.
                let given = obj
                    .get("params")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.values().filter(|v| !v.is_null()).count());
                assert_eq!(req.params.len(), given);
                if let Some(name) = &req.client_name {
                    assert!(!name.trim().is_empty());
                }
                if let Some(group) = &req.group_name {
                    assert!(!group.is_empty() && group == group.trim());
                }
            }
            Err(e) => {
                // Every refusal names a field and says what is wrong.
                assert!(!e.field.is_empty());
                assert!(!e.detail.is_empty());
            }
        }
    }
});
