//! The fast path of a status webhook: a body that only reports statuses, in the shape Meta
//! sends them, read straight into [`Report`]s without a `serde_json::Value` tree.
//!
//! [`statuses`] answers `None` for anything else (not an object, a field of another type, a
//! key given twice, inbound messages, errors, a change of another field…), and the webhook
//! is then read as it always was ([`super::parse`] over a `Value`). Where it answers, its
//! reports are [`super::parse`]'s, in the same order; the differential tests check that.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::{Report, StatusUpdateData, text_secs_to_ms};
use crate::domain::status::MessageStatus;
use crate::service::input::AnyJson;
use crate::store::Pricing;

/// The reports of a statuses-only webhook body, or `None` when it must be read the `Value`
/// way. The body's depth is checked by the caller first, as for the `Value` way.
pub fn statuses(body: &[u8]) -> Option<Vec<Report>> {
    let payload: Payload = serde_json::from_slice(body).ok()?;
    let mut reports = Vec::new();
    for entry in payload.entry.into_iter().flatten() {
        for change in entry.changes.into_iter().flatten() {
            // Other fields (templates, quality, account updates) go the `Value` way.
            if change.field.as_deref() != Some("messages") {
                return None;
            }
            let value = change.value?;
            // Inbound messages keep their raw `Value`, and errors are rare: the `Value` way.
            if value.messages.is_some() {
                return None;
            }
            let Some(pnid) = value.metadata.and_then(|m| m.phone_number_id) else {
                continue;
            };
            for s in value.statuses.into_iter().flatten() {
                if s.errors.is_some() {
                    return None;
                }
                let status = match s.status.as_deref() {
                    Some("sent") => MessageStatus::Sent,
                    Some("delivered") => MessageStatus::Delivered,
                    Some("read") => MessageStatus::Read,
                    Some("failed") => MessageStatus::Failed,
                    _ => continue,
                };
                let Some(wamid) = s.id else {
                    continue;
                };
                let (pricing_category, pricing) = match s.pricing {
                    Some(p) => {
                        let pricing = Pricing {
                            pricing_type: p.kind,
                            category: p.category,
                            pricing_model: p.pricing_model,
                            billable: p.billable,
                        };
                        let category = pricing.category.clone();
                        (category, (pricing != Pricing::default()).then_some(pricing))
                    }
                    None => (None, None),
                };
                reports.push(Report::Status {
                    phone_number_id: pnid.clone(),
                    update: StatusUpdateData {
                        wamid,
                        callback: s.biz_opaque_callback_data,
                        status,
                        at: text_secs_to_ms(s.timestamp.and_then(|t| t.0)),
                        error: None,
                        pricing_category,
                        pricing,
                    },
                    recipient_user_id: s.recipient_user_id.filter(|u| !u.is_empty()),
                });
            }
        }
    }
    Some(reports)
}

/// Which of `keys` a JSON key is (`None`: another key), read without copying it.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == key))
    }
}

/// A JSON object read into a struct of optional fields: only from an object (an array is
/// refused, where a derived `Deserialize` would read it by position), a null value is `None`,
/// a key given twice is refused (the `Value` way keeps the last one), and other keys are read
/// as [`AnyJson`] and dropped.
macro_rules! json_object {
    ($name:ident { $($field:ident: $ty:ty = $key:literal,)* }) => {
        #[derive(Default)]
        struct $name {
            $($field: Option<$ty>,)*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> Visitor<'de> for ObjectVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("an object: ", stringify!($name)))
                    }

                    #[allow(unused_assignments)]
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        const KEYS: &[&str] = &[$($key),*];
                        let mut out = $name::default();
                        let mut seen = [false; KEYS.len()];
                        while let Some(key) = map.next_key_seed(KeySeed(KEYS))? {
                            let Some(i) = key else {
                                map.next_value::<AnyJson>()?;
                                continue;
                            };
                            if std::mem::replace(&mut seen[i], true) {
                                return Err(de::Error::custom("a key given twice"));
                            }
                            let mut n = 0;
                            $(
                                if i == n {
                                    out.$field = map.next_value()?;
                                }
                                n += 1;
                            )*
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(ObjectVisitor)
            }
        }
    };
}

json_object!(Payload {
    entry: Vec<Entry> = "entry",
});

json_object!(Entry {
    changes: Vec<Change> = "changes",
});

json_object!(Change {
    field: String = "field",
    value: ChangeValue = "value",
});

json_object!(ChangeValue {
    metadata: Metadata = "metadata",
    statuses: Vec<Status> = "statuses",
    messages: AnyJson = "messages",
});

json_object!(Metadata {
    phone_number_id: String = "phone_number_id",
});

json_object!(Status {
    id: String = "id",
    status: String = "status",
    timestamp: Seconds = "timestamp",
    recipient_user_id: String = "recipient_user_id",
    biz_opaque_callback_data: String = "biz_opaque_callback_data",
    pricing: PricingObject = "pricing",
    errors: AnyJson = "errors",
});

json_object!(PricingObject {
    kind: String = "type",
    category: String = "category",
    pricing_model: String = "pricing_model",
    billable: bool = "billable",
});

/// A status's `timestamp` as the `Value` way reads it: Unix seconds as a string or a whole
/// number (`None` for another number: the time of receipt is used).
struct Seconds(Option<i64>);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                Ok(Seconds(v.parse::<i64>().ok()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(Some(v)))
            }
            // `Number::as_i64` of a `u64` past `i64::MAX`, and of a float, is `None`.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Seconds, E> {
                Ok(Seconds(None))
            }
        }
        d.deserialize_any(SecondsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::inbound::parse;
    use rand::{Rng, SeedableRng};

    /// The `Value` way's reports of `body`, with a receipt time (no timestamp) set to 0.
    fn value_way(body: &str) -> Option<Vec<Report>> {
        let payload: serde_json::Value = serde_json::from_slice(body.as_bytes()).ok()?;
        Some(without_receipt_times(parse(&payload)))
    }

    /// Reports whose `at` is the time they were read (within the last minute) get 0, so the
    /// two ways compare.
    fn without_receipt_times(mut reports: Vec<Report>) -> Vec<Report> {
        let now = crate::now_ms();
        for r in &mut reports {
            if let Report::Status { update, .. } = r
                && (now - 60_000..=now).contains(&update.at)
            {
                update.at = 0;
            }
        }
        reports
    }

    fn fast(body: &str) -> Option<Vec<Report>> {
        statuses(body.as_bytes()).map(without_receipt_times)
    }

    /// Taken by the fast path, with the `Value` way's reports.
    fn same(body: &str) {
        let fast = fast(body).unwrap_or_else(|| panic!("not taken: {body}"));
        assert_eq!(Some(fast), value_way(body), "{body}");
    }

    const META: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001","phone_number_id":"PN1"},"statuses":[{"id":"wamid.1","status":"sent","timestamp":"1700000001","recipient_id":"50755667788","recipient_user_id":"US.1","biz_opaque_callback_data":"msg_1","conversation":{"id":"c1","expiration_timestamp":"1700086400","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}},{"id":"wamid.2","status":"read","timestamp":1700000002,"recipient_id":"50755667788"}]},"field":"messages"}]},{"id":"WABA2","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN2"},"statuses":[{"id":"wamid.3","status":"delivered","timestamp":"1700000003","pricing":{}}]}},{"field":"messages","value":{"metadata":{"phone_number_id":"PN3"},"statuses":[]}}]}]}"#;

    #[test]
    fn meta_status_bodies_are_read_as_the_value_way_reads_them() {
        same(META);
        assert_eq!(fast(META).unwrap().len(), 3);
        for body in [
            r#"{}"#,
            r#"{"entry":null}"#,
            r#"{"entry":[]}"#,
            r#"{"entry":[{}]}"#,
            r#"{"entry":[{"changes":null}]}"#,
            // Skipped as the `Value` way skips them: no number id, no wamid, another status.
            r#"{"entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"w","status":"sent"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":null,"statuses":[{"id":"w","status":"sent"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":null},"statuses":[{"id":"w","status":"sent"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"status":"sent"},{"id":"w","status":"deleted"},{"id":"w","status":null},{"id":"w2","status":"failed"}]}}]}]}"#,
            // Timestamps: a number, a string, a negative, not a number, none, a float, huge.
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"sent","timestamp":-5},{"id":"b","status":"sent","timestamp":" 17"},{"id":"c","status":"sent","timestamp":"x"},{"id":"d","status":"sent"},{"id":"e","status":"sent","timestamp":1.5},{"id":"f","status":"sent","timestamp":18446744073709551615},{"id":"g","status":"sent","timestamp":"9223372036854775807"},{"id":"h","status":"sent","timestamp":null}]}}]}]}"#,
            // Empty user ids are none; pricing fields in part.
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"read","recipient_user_id":"","pricing":{"billable":false}},{"id":"b","status":"read","pricing":null,"biz_opaque_callback_data":null,"errors":null}]}}]}]}"#,
            // Unknown keys at every level, of every kind, and escapes.
            r#"{"x":[1,{"y":[true,null,-2.5e10]}],"entry":[{"id":7,"changes":[{"z":{},"field":"messages","value":{"contacts":[{"wa_id":"1"}],"messages":null,"metadata":{"phone_number_id":"P\u00e9","q":1},"statuses":[{"id":"w\"1","status":"sent","extra":"\ud83d\ude00"}]}}]}]}"#,
        ] {
            same(body);
        }
    }

    #[test]
    fn the_fakes_batched_status_bodies_take_the_fast_path() {
        use fake_graph::{BusinessIds, StatusEvent, payload};
        let biz = |waba: &str, pnid: &str| BusinessIds {
            waba_id: waba.into(),
            phone_number_id: pnid.into(),
            display_phone_number: "15550001".into(),
        };
        let (a, b) = (biz("W1", "P1"), biz("W1", "P2"));
        let sent = [
            StatusEvent::new("wamid.1", "sent", "50755667788"),
            StatusEvent::new("wamid.2", "delivered", "50755667789"),
        ];
        let read = [StatusEvent::new("wamid.1", "read", "50755667788")];
        let body = payload::statuses_body(&[(&a, &sent[..]), (&b, &read[..])]);
        same(std::str::from_utf8(&body).unwrap());
        assert_eq!(fast(std::str::from_utf8(&body).unwrap()).unwrap().len(), 3);
    }

    #[test]
    fn anything_else_goes_the_value_way() {
        for body in [
            "",
            "null",
            "[]",
            r#"{"entry":{}}"#,
            r#"{"entry":[[]]}"#,
            r#"{"entry":[[[{"field":"messages"}]]]}"#,
            r#"{"entry":[{"changes":[["messages",{"metadata":{"phone_number_id":"P"}}]]}]}"#,
            r#"{"entry":[1]}"#,
            r#"{"entry":[],"entry":[]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","field":"messages","value":{}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","id":"b","status":"sent"}]}}]}]}"#,
            // Other fields, no field, no value, inbound messages, errors.
            r#"{"entry":[{"id":"W","changes":[{"field":"message_template_status_update","value":{"event":"PAUSED","message_template_id":1}}]}]}"#,
            r#"{"entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"sent"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages"}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"messages":[{"id":"m","from":"1"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"failed","errors":[{"code":1}]}]}}]}]}"#,
            // A field of another type.
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":5},"statuses":[]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":1,"status":"sent"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"sent","timestamp":true}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"sent","pricing":{"billable":"yes"}}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"a","status":"sent","pricing":"x"}]}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":{"id":"a"}}}]}]}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[7]}}]}]}"#,
            // What `Value` refuses, under a key nobody reads.
            r#"{"entry":[],"x":1e999}"#,
            r#"{"entry":[],"x":"\udc00"}"#,
            r#"{"entry":[]} x"#,
        ] {
            assert_eq!(fast(body), None, "{body}");
        }
    }

    #[test]
    fn generated_status_bodies_are_read_as_the_value_way_reads_them() {
        let keys = [
            "id",
            "status",
            "timestamp",
            "recipient_user_id",
            "biz_opaque_callback_data",
            "pricing",
            "recipient_id",
            "conversation",
        ];
        let values = [
            r#""wamid.1""#,
            r#""sent""#,
            r#""read""#,
            r#""delivered""#,
            r#""failed""#,
            r#""""#,
            r#""1700000000""#,
            "1700000000",
            "null",
            "true",
            "-1",
            "0.5",
            "[]",
            "{}",
            r#"{"billable":true,"category":"utility"}"#,
            r#"{"type":"regular","pricing_model":"PMP","x":[1]}"#,
        ];
        // A seeded generator: the same bodies every run.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: usize| rng.gen_range(0..n);
        let mut taken = 0;
        for _ in 0..3_000 {
            let mut statuses = Vec::new();
            for _ in 0..next(4) {
                let mut parts = Vec::new();
                for _ in 0..next(6) {
                    let key = keys[next(keys.len())];
                    parts.push(format!("\"{key}\":{}", values[next(values.len())]));
                }
                statuses.push(format!("{{{}}}", parts.join(",")));
            }
            let body = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"statuses":[{}]}}}}]}}]}}"#,
                statuses.join(",")
            );
            if let Some(reports) = fast(&body) {
                taken += 1;
                assert_eq!(Some(reports), value_way(&body), "{body}");
            }
        }
        assert!(taken > 300, "only {taken} bodies took the fast path");
    }
}
